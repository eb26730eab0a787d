"""The artifact cache folder is private to the user: whoever can write it can make the runtime load
native code (an AOTInductor .so; the sidecar hash proves integrity, not origin)."""
import stat

from synsp_core.artifacts import cache_dir


def test_cache_dir_is_created_private(monkeypatch, tmp_path):
    folder = tmp_path / "home" / "cache" / "synsp_ros"
    monkeypatch.setenv("SYNSP_CACHE_DIR", str(folder))
    assert cache_dir() == folder and not folder.exists()   # looking it up creates nothing
    assert cache_dir(create=True) == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
