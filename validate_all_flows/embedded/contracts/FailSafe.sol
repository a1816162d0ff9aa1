// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IdentityNFT} from "./IdentityNFT.sol";
import {Roles} from "./Roles.sol";

/// @title FailSafe
/// @notice Cancels an identity token when its holder signals duress; keeps the reason hash on record.
/// @dev This contract must hold IdentityNFT's FAILSAFE_ROLE. The reason is a hash (never the reason in
///      clear: the chain is public).
///
///      Roles:
///        ADMIN_ROLE    grants and revokes roles (see Roles).
///        TRIGGER_ROLE  triggers the fail-safe (the backend).
///
///      Revert reasons:
///        "FailSafe: caller is not a trigger"   trigger / triggerForWallet without TRIGGER_ROLE
///        "FailSafe: empty reason"              reason hash 0
///        "FailSafe: wallet has no identity"    triggerForWallet for a wallet never minted a token
///        "FailSafe: zero address"              constructor given no IdentityNFT
///        and IdentityNFT's reasons, bubbled up: "IdentityNFT: identity not active" (unknown or already
///        cancelled token), "IdentityNFT: caller is not the fail-safe" (this contract lacks FAILSAFE_ROLE).
contract FailSafe is Roles {
    /// @notice Holders may trigger the fail-safe.
    bytes32 public constant TRIGGER_ROLE = keccak256("TRIGGER_ROLE");

    /// @notice A fail-safe that fired.
    struct Trigger {
        bytes32 reasonHash;
        address triggeredBy;
        uint64 timestamp;
        uint64 blockNumber;
    }

    /// @notice The identity contract whose tokens this fail-safe cancels.
    IdentityNFT public immutable identity;

    mapping(uint256 tokenId => Trigger) private _triggers;

    /// @notice The fail-safe cancelled identity `tokenId` of `wallet` for `reasonHash`.
    event FailSafeTriggered(
        uint256 indexed tokenId, address indexed wallet, bytes32 reasonHash, address indexed triggeredBy
    );

    /// @param identityNft the IdentityNFT whose tokens this contract cancels.
    /// @param admin receives ADMIN_ROLE.
    constructor(IdentityNFT identityNft, address admin) Roles(admin) {
        require(address(identityNft) != address(0), "FailSafe: zero address");
        identity = identityNft;
    }

    /// @notice Cancels identity `tokenId` for `reasonHash`. TRIGGER_ROLE only.
    function trigger(uint256 tokenId, bytes32 reasonHash) external {
        _require(TRIGGER_ROLE, "FailSafe: caller is not a trigger");
        _trigger(tokenId, reasonHash);
    }

    /// @notice Cancels the identity of `wallet` for `reasonHash`; returns its token id. TRIGGER_ROLE only.
    function triggerForWallet(address wallet, bytes32 reasonHash) external returns (uint256 tokenId) {
        _require(TRIGGER_ROLE, "FailSafe: caller is not a trigger");
        tokenId = identity.tokenOf(wallet);
        require(tokenId != 0, "FailSafe: wallet has no identity");
        _trigger(tokenId, reasonHash);
    }

    /// @notice The trigger recorded for `tokenId` (all zero when the fail-safe never fired for it).
    function triggerOf(uint256 tokenId) external view returns (Trigger memory) {
        return _triggers[tokenId];
    }

    function _trigger(uint256 tokenId, bytes32 reasonHash) private {
        require(reasonHash != bytes32(0), "FailSafe: empty reason");
        identity.cancel(tokenId, reasonHash);
        _triggers[tokenId] = Trigger(reasonHash, msg.sender, uint64(block.timestamp), uint64(block.number));
        emit FailSafeTriggered(tokenId, identity.ownerOf(tokenId), reasonHash, msg.sender);
    }
}
