"""plotly.js's "cartesian" partial bundle for the explorer's pages.

The full plotly.js that Dash serves is 4.8 MB; a browser spends about a second of CPU only
evaluating it, the largest part of the explorer's first render. Every figure of the explorer
uses trace types of the cartesian bundle (scatter, bar, heatmap, histogram), which is 1.5 MB
and evaluates in about half the time. ``create_app`` serves that bundle when one for exactly
the plotly.js version of the installed ``plotly`` package is in ``ASSETS``, and falls back to
the full bundle (preloaded) otherwise.

    python -m grimsim.explorer.plotly_bundle     # installs it with npm (the npm registry)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from grimsim.errors import GrimsimError

log = logging.getLogger(__name__)

#: Dash's assets folder of the explorer app (``create_app`` serves only the bundle from it).
ASSETS = Path(__file__).with_name("assets")
#: The npm package of the bundle; its versions follow plotly.js's own.
NPM_PACKAGE = "plotly.js-cartesian-dist-min"
#: The file inside the npm package.
PACKAGE_FILE = "package/plotly-cartesian.min.js"


class BundleError(GrimsimError):
    """The bundle could not be installed (no npm, no such version, unexpected package)."""


def plotlyjs_version() -> str:
    """The plotly.js version the installed ``plotly`` package writes figures for."""
    from plotly.offline import get_plotlyjs_version  # light: no figure machinery

    return str(get_plotlyjs_version())


def bundle_name(version: str) -> str:
    return f"plotly-cartesian-{version}.min.js"


def find_bundle(folder: Path = ASSETS, version: str | None = None) -> Path | None:
    """The installed bundle for ``version`` (default: the installed plotly's), or None."""
    path = folder / bundle_name(version or plotlyjs_version())
    return path if path.is_file() else None


def check_bundle(text: str, version: str) -> None:
    """A clear error unless ``text`` opens like plotly.js's cartesian bundle of ``version``."""
    head = text[:400]
    if "plotly.js (cartesian" not in head or f"v{version}" not in head:
        raise BundleError(f"{NPM_PACKAGE}@{version} does not start with the plotly.js "
                          f"cartesian v{version} banner; not installing it")


def install_bundle(folder: Path = ASSETS, version: str | None = None,
                   npm: str | None = None, timeout_s: float = 300.0) -> Path:
    """Fetch the bundle with ``npm pack`` (into a temporary folder) and copy its one file to
    ``folder``; returns its path. Does nothing when it is already there."""
    version = version or plotlyjs_version()
    have = find_bundle(folder, version)
    if have is not None:
        return have
    npm = npm or shutil.which("npm")
    if npm is None:
        raise BundleError("npm is not installed (apt-get install npm, or Node.js); the "
                          "explorer keeps serving the full plotly.js bundle")
    with tempfile.TemporaryDirectory(prefix="grimsim-plotly-") as tmp:
        try:
            done = subprocess.run([npm, "pack", "--silent", f"{NPM_PACKAGE}@{version}"],
                                  cwd=tmp, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise BundleError(f"npm pack {NPM_PACKAGE}@{version} took over {timeout_s:.0f} s"
                              ) from None
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise BundleError(f"npm pack {NPM_PACKAGE}@{version} failed: "
                              f"{(done.stderr or done.stdout).strip()[-500:]}")
        with tarfile.open(tarballs[0], "r:gz") as tar:
            try:
                member = tar.getmember(PACKAGE_FILE)
            except KeyError:
                raise BundleError(f"{NPM_PACKAGE}@{version} has no {PACKAGE_FILE}") from None
            stream = tar.extractfile(member)
            if stream is None:
                raise BundleError(f"{PACKAGE_FILE} in {NPM_PACKAGE}@{version} is not a file")
            data = stream.read()
        check_bundle(data.decode("utf-8", errors="replace"), version)
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / bundle_name(version)
        part = dest.with_name(dest.name + ".part")
        part.write_bytes(data)
        os.replace(part, dest)  # a server starting meanwhile sees all of it or nothing
    log.info("installed %s (%d kB)", dest, len(data) // 1000)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Install plotly.js's cartesian bundle for the "
                                             "explorer (a faster first page).")
    ap.add_argument("--folder", type=Path, default=ASSETS, help="where to put it")
    ap.add_argument("--optional", action="store_true",
                    help="exit 0 when it cannot be installed (the explorer then serves the "
                         "full plotly.js)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = install_bundle(args.folder)
    except BundleError as exc:
        print(f"plotly bundle: {exc}", file=sys.stderr)
        return 0 if args.optional else 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
