"""The `mnistlab` command: the trainer's commands plus `serve`, which runs the whole service."""

from __future__ import annotations

import argparse

from trainer.cli import add_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mnistlab", description=__doc__)
    sub = parser.add_subparsers(required=True)
    add_commands(sub)
    serve = sub.add_parser("serve", help="start the API, a worker and Redis (Ctrl-C stops all)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.set_defaults(func=_serve)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _serve(args: argparse.Namespace) -> int:
    from cli.serve import serve

    return serve(host=args.host, port=args.port, workers=args.workers)
