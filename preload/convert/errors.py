"""The error a conversion fails with when its input is at fault."""


class ConvertError(Exception):
    """A resource that cannot be converted: unsupported, corrupt or unsafe.

    The message names the file (and the archive member) at fault.
    """
