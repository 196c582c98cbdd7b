"""``python -m modelyard.deploy verify DIR | warm | serve``: what an image built by ``yard build`` runs.

Plain ``argparse`` (no Typer, no rich): the server's start is what a container's time-to-ready waits for.
"""

from __future__ import annotations

import argparse
import os
import sys

from modelyard.errors import ModelyardError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelyard.deploy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser(
        "verify", help="Check every baked model file against its digest (exit 1 on a mismatch)."
    )
    v.add_argument("home", help="The model folder (yard-image.json, serve.yaml, blobs/).")
    sub.add_parser(
        "warm", help="Write the caches the server reads at start into YARD_CACHE_DIR (at image build)."
    )
    s = sub.add_parser("serve", help="Serve the image's deployment spec.")
    s.add_argument("--home", default=os.environ.get("YARD_IMAGE_HOME", "/opt/yard/model"))
    s.add_argument("--spec", default=None, help="Deployment spec file (default: the one baked in).")
    s.add_argument("--host", default=os.environ.get("YARD_HOST", "0.0.0.0"))
    s.add_argument("--port", type=int, default=int(os.environ.get("YARD_PORT", "8080")))
    s.add_argument("--workers", default=os.environ.get("YARD_WORKERS", "1"), help="A number or 'auto'.")
    args = parser.parse_args(argv)
    from modelyard.deploy._image import serve_image, verify_image, warm_caches

    try:
        if args.command == "verify":
            for line in verify_image(args.home):
                print(f"verified {line}")
        elif args.command == "warm":
            for line in warm_caches():
                print(f"cached {line}")
        else:
            serve_image(args.home, spec=args.spec, host=args.host, port=args.port, workers=args.workers)
    except ModelyardError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
