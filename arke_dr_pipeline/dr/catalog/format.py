"""The format of what the backups folder holds, as a number we can promise (docs/FORMAT.md).

Every sidecar carries `format: 1`; every inventory starts with one header
line naming its format and columns. A reader meeting a newer format refuses
it by name instead of misreading it; files from before the number (no
`format` key, no header) are format 1.
"""

from __future__ import annotations

from ... import __version__
from ...errors import ArkeDrError

FORMAT = 1
INVENTORY_HEADER = f"#arke-dr inventory format {FORMAT}\tcid\trole\tcodec\tsize"


class NewerFormat(ArkeDrError, ValueError):
    """A file written by a newer arke-dr than this one."""


def check_format(value, where: str) -> None:
    if value is None:
        return
    if type(value) is not int or value < 1:
        raise NewerFormat(f"{where}: format {value!r} is not a format arke-dr writes")
    if value > FORMAT:
        raise NewerFormat(f"{where} is format {value}, written by a newer arke-dr; this one "
                          f"({__version__}) reads format {FORMAT}: upgrade arke-dr to read it")


def inventory_line(line: str, where: str) -> bool:
    """True for a row; False for the header (checked) or a blank line."""
    if line.startswith("#"):
        if line.startswith("#arke-dr inventory format "):
            number = line[len("#arke-dr inventory format "):].split("\t", 1)[0].strip()
            check_format(int(number) if number.isdigit() else number, where)
        return False
    return bool(line.strip())
