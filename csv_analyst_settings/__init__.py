"""Configuration by flags and environment variables, by one rule for every entry point."""
