// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IdentityNFT} from "./IdentityNFT.sol";
import {Roles} from "./Roles.sol";

/// @title ProofRegistry
/// @notice Records document hashes signed by holders of an active identity, and anchors Merkle roots of
///         batches of document hashes with an on-chain RFC 6962 / RFC 9162 inclusion-proof check.
/// @dev A document hash is registered once; its record names the signer's wallet and identity token.
///      Batches: the backend builds an RFC 6962 Merkle tree over 32-byte document hashes
///      (leaf hash = sha256(0x00 || documentHash), node hash = sha256(0x01 || left || right)) and anchors
///      its root and size; anyone can then check a document's inclusion proof with `verifyInclusion` or
///      `verifyAnchoredInclusion`. Hashing uses the sha256 precompile (address 0x02).
///
///      Roles:
///        ADMIN_ROLE      grants and revokes roles (see Roles).
///        REGISTRAR_ROLE  registers proofs on behalf of a signer and anchors batch roots (the backend).
///      Anyone holding an active identity may register a proof for itself with `registerProof`.
///
///      Revert reasons:
///        "ProofRegistry: caller is not a registrar"      registerProofFor / anchorBatch without REGISTRAR_ROLE
///        "ProofRegistry: empty document hash"            document hash 0
///        "ProofRegistry: signer has no identity"         the signer's wallet was never minted a token
///        "ProofRegistry: identity cancelled"             the signer's token was cancelled by the fail-safe
///        "ProofRegistry: document already registered"    the hash has a record already
///        "ProofRegistry: empty root"                     anchorBatch with root 0
///        "ProofRegistry: empty batch"                    anchorBatch with tree size 0
///        "ProofRegistry: root already anchored"          the same root anchored twice
///        "ProofRegistry: zero address"                   constructor given no IdentityNFT
contract ProofRegistry is Roles {
    /// @notice Holders may register proofs for other signers and anchor batches.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    /// @notice A registered document.
    struct Proof {
        address signer;
        uint256 tokenId;
        uint64 timestamp;
        uint64 blockNumber;
    }

    /// @notice An anchored batch root.
    struct Batch {
        bytes32 root;
        uint64 treeSize;
        uint64 timestamp;
        uint64 blockNumber;
    }

    /// @notice The identity contract consulted on every registration.
    IdentityNFT public immutable identity;
    /// @notice Number of batches anchored so far (also the id of the last one; ids start at 1).
    uint256 public batchCount;

    mapping(bytes32 documentHash => Proof) private _proofs;
    mapping(uint256 batchId => Batch) private _batches;
    mapping(bytes32 root => uint256 batchId) private _batchOfRoot;

    /// @notice `documentHash` was registered by `signer` holding identity `tokenId`.
    event ProofRegistered(bytes32 indexed documentHash, address indexed signer, uint256 indexed tokenId);
    /// @notice Batch `batchId` with Merkle `root` over `treeSize` document hashes was anchored.
    event BatchAnchored(uint256 indexed batchId, bytes32 indexed root, uint256 treeSize);

    /// @param identityNft the IdentityNFT whose tokens authorise signers.
    /// @param admin receives ADMIN_ROLE.
    constructor(IdentityNFT identityNft, address admin) Roles(admin) {
        require(address(identityNft) != address(0), "ProofRegistry: zero address");
        identity = identityNft;
    }

    /// @notice Registers `documentHash` signed by the caller, who must hold an active identity.
    function registerProof(bytes32 documentHash) external returns (uint256 tokenId) {
        return _register(msg.sender, documentHash);
    }

    /// @notice Registers `documentHash` signed by `signer` (who must hold an active identity). REGISTRAR_ROLE only.
    function registerProofFor(address signer, bytes32 documentHash) external returns (uint256 tokenId) {
        _require(REGISTRAR_ROLE, "ProofRegistry: caller is not a registrar");
        return _register(signer, documentHash);
    }

    /// @notice The record of `documentHash` (all zero when it was never registered).
    function getProof(bytes32 documentHash) external view returns (Proof memory) {
        return _proofs[documentHash];
    }

    /// @notice True when `documentHash` has been registered.
    function isRegistered(bytes32 documentHash) external view returns (bool) {
        return _proofs[documentHash].signer != address(0);
    }

    /// @notice Anchors the RFC 6962 Merkle `root` of a batch of `treeSize` document hashes; returns its id.
    ///         REGISTRAR_ROLE only.
    function anchorBatch(bytes32 root, uint64 treeSize) external returns (uint256 batchId) {
        _require(REGISTRAR_ROLE, "ProofRegistry: caller is not a registrar");
        require(root != bytes32(0), "ProofRegistry: empty root");
        require(treeSize != 0, "ProofRegistry: empty batch");
        require(_batchOfRoot[root] == 0, "ProofRegistry: root already anchored");
        batchId = ++batchCount;
        _batches[batchId] = Batch(root, treeSize, uint64(block.timestamp), uint64(block.number));
        _batchOfRoot[root] = batchId;
        emit BatchAnchored(batchId, root, treeSize);
    }

    /// @notice The anchored batch `batchId` (all zero when unknown).
    function getBatch(uint256 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @notice The id of the batch that anchored `root`, or 0.
    function batchOfRoot(bytes32 root) external view returns (uint256) {
        return _batchOfRoot[root];
    }

    /// @notice RFC 6962 leaf hash of a document hash: sha256(0x00 || documentHash).
    function leafHash(bytes32 documentHash) public pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), documentHash));
    }

    /// @notice Root implied by an inclusion proof (RFC 9162 section 2.1.3.2); ok is false when the
    ///         proof's shape does not fit `leafIndex` and `treeSize` (then root is 0).
    function rootFromInclusionProof(
        bytes32 documentHash,
        uint256 leafIndex,
        uint256 treeSize,
        bytes32[] calldata path
    ) public pure returns (bool ok, bytes32 root) {
        if (leafIndex >= treeSize) return (false, bytes32(0));
        uint256 fn = leafIndex;
        uint256 sn = treeSize - 1;
        bytes32 r = leafHash(documentHash);
        for (uint256 i = 0; i < path.length; ++i) {
            if (sn == 0) return (false, bytes32(0));
            if (fn & 1 == 1 || fn == sn) {
                r = sha256(abi.encodePacked(bytes1(0x01), path[i], r));
                // Skip the levels where this node is a lone right-most node (no sibling).
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                r = sha256(abi.encodePacked(bytes1(0x01), r, path[i]));
            }
            fn >>= 1;
            sn >>= 1;
        }
        if (sn != 0) return (false, bytes32(0));
        return (true, r);
    }

    /// @notice True when `path` proves `documentHash` is leaf `leafIndex` of the tree of `treeSize`
    ///         leaves with root `root`.
    function verifyInclusion(
        bytes32 documentHash,
        uint256 leafIndex,
        uint256 treeSize,
        bytes32[] calldata path,
        bytes32 root
    ) public pure returns (bool) {
        (bool ok, bytes32 computed) = rootFromInclusionProof(documentHash, leafIndex, treeSize, path);
        return ok && computed == root;
    }

    /// @notice `verifyInclusion` against the root and size of anchored batch `batchId` (false if unknown).
    function verifyAnchoredInclusion(
        uint256 batchId,
        bytes32 documentHash,
        uint256 leafIndex,
        bytes32[] calldata path
    ) external view returns (bool) {
        Batch storage b = _batches[batchId];
        if (b.treeSize == 0) return false;
        return verifyInclusion(documentHash, leafIndex, b.treeSize, path, b.root);
    }

    function _register(address signer, bytes32 documentHash) private returns (uint256 tokenId) {
        require(documentHash != bytes32(0), "ProofRegistry: empty document hash");
        tokenId = identity.tokenOf(signer);
        require(tokenId != 0, "ProofRegistry: signer has no identity");
        require(identity.statusOf(tokenId) == IdentityNFT.Status.Active, "ProofRegistry: identity cancelled");
        require(_proofs[documentHash].signer == address(0), "ProofRegistry: document already registered");
        _proofs[documentHash] = Proof(signer, tokenId, uint64(block.timestamp), uint64(block.number));
        emit ProofRegistered(documentHash, signer, tokenId);
    }
}
