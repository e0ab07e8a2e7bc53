"""Read ``.npz`` files whose entries may be pickled Python objects, without running code.

VideoPose3D stores nested dicts of arrays as 0-d object arrays, which NumPy
writes with pickle, and ``np.load(allow_pickle=True)`` would execute whatever a
crafted file asks. Here object entries are unpickled by a restricted
unpickler that can only rebuild NumPy arrays, dtypes and scalars (dicts,
lists, strings and numbers are plain pickle opcodes, not globals).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from poselift.errors import DataFormatError

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            if module.startswith("numpy.core") and int(np.__version__.split(".")[0]) >= 2:
                module = module.replace("numpy.core", "numpy._core", 1)
            mod = __import__(module, fromlist=[name])
            return getattr(mod, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy arrays are allowed")


def _read_npy(stream: io.BufferedIOBase, source: str):
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        try:
            return _RestrictedUnpickler(stream, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as exc:
            raise DataFormatError(f"{source}: unsafe or corrupt pickled entry ({exc})") from None
    data = stream.read()
    count = int(np.prod(shape)) if shape else 1
    arr = np.frombuffer(data, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def load_npz(path: str | Path) -> dict[str, object]:
    """Entries of an ``.npz``: arrays as arrays, pickled 0-d object arrays as their Python object."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist")
    out: dict[str, object] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if not member.endswith(".npy"):
                    continue
                with zf.open(member) as f:
                    value = _read_npy(io.BufferedReader(f), f"{path}:{member}")
                if isinstance(value, np.ndarray) and value.dtype.hasobject and value.shape == ():
                    value = value.item()
                out[member[:-4]] = value
    except zipfile.BadZipFile:
        raise DataFormatError(f"{path} is not an .npz file (not a zip archive)") from None
    except ValueError as exc:
        raise DataFormatError(f"{path}: corrupt array entry ({exc})") from None
    return out
