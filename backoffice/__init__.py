"""What operators and compliance see beyond one model's pages, and the set-up commands
(`bootstrap_tenant`, `seed_demo`). It sits above every other app and reads them through
their selectors and services."""
