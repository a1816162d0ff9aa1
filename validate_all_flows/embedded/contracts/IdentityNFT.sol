// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Roles} from "./Roles.sol";

/// @title IdentityNFT
/// @notice One non-transferable (soulbound, ERC-5192 "locked") identity token per wallet.
/// @dev Token ids start at 1; id 0 means "no token". A wallet gets at most one token, ever: a cancelled
///      identity stays cancelled and the wallet cannot be minted again.
///
///      Roles:
///        ADMIN_ROLE    grants and revokes roles (see Roles).
///        MINTER_ROLE   mints identities (the backend, after KYC approval).
///        FAILSAFE_ROLE cancels identities (the FailSafe contract).
///
///      Revert reasons:
///        "IdentityNFT: caller is not a minter"          mint without MINTER_ROLE
///        "IdentityNFT: caller is not the fail-safe"     cancel without FAILSAFE_ROLE
///        "IdentityNFT: zero address"                    mint to address 0
///        "IdentityNFT: wallet already has an identity"  second mint to one wallet
///        "IdentityNFT: identity not active"             cancel of an unknown or already cancelled token
///        "IdentityNFT: unknown token"                   ownerOf / tokenURI-style reads of an unknown id
///        "IdentityNFT: non-transferable"                every transfer and approval function
contract IdentityNFT is Roles {
    /// @notice Holders may mint identities.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice Holders may cancel identities.
    bytes32 public constant FAILSAFE_ROLE = keccak256("FAILSAFE_ROLE");

    /// @notice Lifecycle of a token: None (never minted), Active, Cancelled.
    enum Status {
        None,
        Active,
        Cancelled
    }

    /// @notice ERC-721 collection name.
    string public constant name = "Blocktrust Identity";
    /// @notice ERC-721 collection symbol.
    string public constant symbol = "BTID";

    /// @notice Number of tokens minted so far (also the id of the last one).
    uint256 public totalMinted;

    mapping(uint256 tokenId => address) private _owners;
    mapping(uint256 tokenId => Status) private _status;
    mapping(address wallet => uint256) private _tokenOf;

    /// @notice ERC-721 transfer event; emitted once per token, from address 0 at mint.
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    /// @notice ERC-5192: the token is bound to its wallet.
    event Locked(uint256 tokenId);
    /// @notice A new identity `tokenId` was minted to `wallet`.
    event IdentityMinted(uint256 indexed tokenId, address indexed wallet);
    /// @notice Identity `tokenId` of `wallet` was cancelled; `reasonHash` is the fail-safe's reason.
    event IdentityCancelled(uint256 indexed tokenId, address indexed wallet, bytes32 reasonHash);

    /// @param admin receives ADMIN_ROLE.
    constructor(address admin) Roles(admin) {}

    /// @notice Mints the identity token of `wallet`; returns its id. MINTER_ROLE only.
    function mint(address wallet) external returns (uint256 tokenId) {
        _require(MINTER_ROLE, "IdentityNFT: caller is not a minter");
        require(wallet != address(0), "IdentityNFT: zero address");
        require(_tokenOf[wallet] == 0, "IdentityNFT: wallet already has an identity");
        tokenId = ++totalMinted;
        _owners[tokenId] = wallet;
        _status[tokenId] = Status.Active;
        _tokenOf[wallet] = tokenId;
        emit Transfer(address(0), wallet, tokenId);
        emit Locked(tokenId);
        emit IdentityMinted(tokenId, wallet);
    }

    /// @notice Cancels identity `tokenId` for `reasonHash`. FAILSAFE_ROLE only.
    function cancel(uint256 tokenId, bytes32 reasonHash) external {
        _require(FAILSAFE_ROLE, "IdentityNFT: caller is not the fail-safe");
        require(_status[tokenId] == Status.Active, "IdentityNFT: identity not active");
        _status[tokenId] = Status.Cancelled;
        emit IdentityCancelled(tokenId, _owners[tokenId], reasonHash);
    }

    /// @notice Status of `tokenId` (None for an id never minted).
    function statusOf(uint256 tokenId) external view returns (Status) {
        return _status[tokenId];
    }

    /// @notice The token id of `wallet`, or 0 when it has none.
    function tokenOf(address wallet) external view returns (uint256) {
        return _tokenOf[wallet];
    }

    /// @notice True when `wallet` holds an active (not cancelled) identity.
    function isActive(address wallet) external view returns (bool) {
        uint256 tokenId = _tokenOf[wallet];
        return tokenId != 0 && _status[tokenId] == Status.Active;
    }

    /// @notice ERC-721: the wallet holding `tokenId`.
    function ownerOf(uint256 tokenId) external view returns (address) {
        address owner = _owners[tokenId];
        require(owner != address(0), "IdentityNFT: unknown token");
        return owner;
    }

    /// @notice ERC-721: 1 when `wallet` holds an identity (active or cancelled), else 0.
    function balanceOf(address wallet) external view returns (uint256) {
        require(wallet != address(0), "IdentityNFT: zero address");
        return _tokenOf[wallet] == 0 ? 0 : 1;
    }

    /// @notice ERC-5192: every existing token is locked.
    function locked(uint256 tokenId) external view returns (bool) {
        require(_owners[tokenId] != address(0), "IdentityNFT: unknown token");
        return true;
    }

    /// @notice ERC-721: no approvals exist.
    function getApproved(uint256 tokenId) external view returns (address) {
        require(_owners[tokenId] != address(0), "IdentityNFT: unknown token");
        return address(0);
    }

    /// @notice ERC-721: no operator approvals exist.
    function isApprovedForAll(address, address) external pure returns (bool) {
        return false;
    }

    /// @notice ERC-721: always reverts, identities cannot move.
    function transferFrom(address, address, uint256) external pure {
        revert("IdentityNFT: non-transferable");
    }

    /// @notice ERC-721: always reverts, identities cannot move.
    function safeTransferFrom(address, address, uint256) external pure {
        revert("IdentityNFT: non-transferable");
    }

    /// @notice ERC-721: always reverts, identities cannot move.
    function safeTransferFrom(address, address, uint256, bytes calldata) external pure {
        revert("IdentityNFT: non-transferable");
    }

    /// @notice ERC-721: always reverts, identities cannot be approved for transfer.
    function approve(address, uint256) external pure {
        revert("IdentityNFT: non-transferable");
    }

    /// @notice ERC-721: always reverts, identities cannot be approved for transfer.
    function setApprovalForAll(address, bool) external pure {
        revert("IdentityNFT: non-transferable");
    }

    /// @notice ERC-165: ERC-165, ERC-721 and ERC-5192.
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == 0x01ffc9a7 // ERC-165
            || interfaceId == 0x80ac58cd // ERC-721
            || interfaceId == 0xb45a3c0e; // ERC-5192
    }
}
