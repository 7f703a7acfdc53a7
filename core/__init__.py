"""The bottom of the layers: the project's time-grid rules and the user-error type.

Every other package may import this one; it imports none of them.
"""

__version__ = "0.1.0"
