"""Where the FreePDK45 transistor models live, and which corners they offer.

The models come from the optional PyPI package ``c4m-pdk-freepdk45`` (install with
``pip install 'neurodtco[pdk]'``). Its wheel ships ``c4m/pdk/freepdk45/freepdk45.spi``, a library
file with one ``.LIB`` section per corner (``NOM``, ``FF``, ``SS``) that includes the BSIM4
(level 54) cards of the PTM-based FreePDK45 devices (``NMOS_VTG``, ``PMOS_VTL``, ...; the cards'
``tnom`` is 27 degC). The file is located through the package's installed-file record, so the
package itself (which imports PDKMaster and PySpice) is never imported.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

DISTRIBUTION = "c4m-pdk-freepdk45"
CORNERS = ("NOM", "FF", "SS")
MODEL_ENV = "NEURODTCO_FREEPDK45"


def model_library_path() -> Path:
    """Path of ``freepdk45.spi`` (``$NEURODTCO_FREEPDK45`` overrides the installed package)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{MODEL_ENV}={override!r} is not a file; point it at freepdk45.spi")
        return path
    try:
        files = importlib.metadata.files(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the FreePDK45 models are not installed: pip install '{DISTRIBUTION}' "
            "(or `pip install -e .[pdk]`), or set NEURODTCO_FREEPDK45 to a freepdk45.spi file"
        ) from None
    for entry in files:
        if entry.name == "freepdk45.spi":
            path = Path(entry.locate())
            if path.is_file():
                return path
    raise FileNotFoundError(f"{DISTRIBUTION} is installed but its freepdk45.spi was not found")


def pdk_available() -> bool:
    """True when the FreePDK45 model library can be found."""
    try:
        model_library_path()
    except FileNotFoundError:
        return False
    return True


def check_corner(corner: str) -> str:
    """Normalise a corner name, refusing unknown ones."""
    name = str(corner).upper()
    if name not in CORNERS:
        raise ValueError(f"corner={corner!r} is not accepted: choose one of {', '.join(CORNERS)}")
    return name


def lib_line(corner: str) -> str:
    """The ``.lib`` statement that loads one corner of the models."""
    return f'.lib "{model_library_path()}" {check_corner(corner)}'
