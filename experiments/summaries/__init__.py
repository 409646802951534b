"""One module per experiment summary; common.py holds what they share."""
