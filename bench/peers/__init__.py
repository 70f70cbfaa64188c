"""The systems a user would pick instead, doing the same work as the bench module."""
