"""The administrators' web console: accounts and roles, dashboard, operations, audit."""
