// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Roles
/// @notice Minimal role-based access control shared by the Blocktrust contracts.
/// @dev Written here instead of importing a library so the contracts compile from this directory alone.
///      `ADMIN_ROLE` (bytes32 0) may grant and revoke every role; the deployer's chosen admin holds it.
///      Reverts: "Roles: caller is not an admin" (grant/revoke by a non-admin),
///               "Roles: zero address" (granting to address 0).
abstract contract Roles {
    /// @notice The role that grants and revokes roles.
    bytes32 public constant ADMIN_ROLE = 0x00;

    mapping(bytes32 role => mapping(address account => bool)) private _members;

    /// @notice Emitted when `account` receives `role` from `sender`.
    event RoleGranted(bytes32 indexed role, address indexed account, address indexed sender);
    /// @notice Emitted when `account` loses `role` (revoked by `sender`, or renounced when sender == account).
    event RoleRevoked(bytes32 indexed role, address indexed account, address indexed sender);

    constructor(address admin) {
        _grant(ADMIN_ROLE, admin);
    }

    /// @notice True when `account` holds `role`.
    function hasRole(bytes32 role, address account) public view returns (bool) {
        return _members[role][account];
    }

    /// @notice Gives `role` to `account`; admin only.
    function grantRole(bytes32 role, address account) external {
        _require(ADMIN_ROLE, "Roles: caller is not an admin");
        _grant(role, account);
    }

    /// @notice Takes `role` from `account`; admin only.
    function revokeRole(bytes32 role, address account) external {
        _require(ADMIN_ROLE, "Roles: caller is not an admin");
        _revoke(role, account);
    }

    /// @notice Gives up `role` held by the caller.
    function renounceRole(bytes32 role) external {
        _revoke(role, msg.sender);
    }

    /// @dev Reverts with `reason` unless the caller holds `role`.
    function _require(bytes32 role, string memory reason) internal view {
        require(_members[role][msg.sender], reason);
    }

    function _grant(bytes32 role, address account) internal {
        require(account != address(0), "Roles: zero address");
        if (!_members[role][account]) {
            _members[role][account] = true;
            emit RoleGranted(role, account, msg.sender);
        }
    }

    function _revoke(bytes32 role, address account) internal {
        if (_members[role][account]) {
            _members[role][account] = false;
            emit RoleRevoked(role, account, msg.sender);
        }
    }
}
