"""The embedded Blocktrust stack that ``validate_all_flows`` brings up when given no target."""
