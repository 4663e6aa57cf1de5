"""The on-disk dataset contract shared by pipeline/ and model/ (imports tensorflow only)."""
