"""Keeps API Gateway REST APIs from granting access to AWS accounts nobody trusts."""

__version__ = "0.1.0"
