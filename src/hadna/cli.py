"""The ``hadna`` command line.

Each subcommand lives in :mod:`hadna.commands.<name>` and provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import heavy libraries (torch,
transformers) inside ``run`` only, so ``hadna --help`` is quick.

User mistakes raise :class:`hadna.errors.HadnaError`; they are printed as one ``hadna: error: ...``
line with exit code 2, never as a traceback (``--debug``, before or after the command, shows the
traceback). So are operating-system errors on a path (an output folder that is a file, no permission).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

#: OSErrors reported in one line when they name a path: it exists as a file, is not a folder, is a folder,
#: cannot be written (permissions, read-only file system) or the disk is full
_PATH_ERRNOS = frozenset({errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS,
                          errno.ENOSPC})

# (subcommand, module under hadna.commands). Order = order in `hadna --help`.
COMMANDS: list[tuple[str, str]] = [
    ("run", "run"),
    ("info", "info"),
    ("pretrain", "pretrain"),
    ("teacher-train", "teacher_train"),
    ("cache-teacher", "cache_teacher"),
    ("finetune", "finetune"),
    ("benchmark", "benchmark"),
    ("report", "report"),
    ("tsne", "tsne"),
    ("embed", "embed"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hadna",
        description="HAD: distil a tiny hybrid Gated DeltaNet DNA language model from a large 6-mer teacher, "
        "then fine-tune, probe and benchmark it.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"hadna {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="more logging")
    # the same two switches after the command (`hadna finetune ... --debug`); SUPPRESS keeps the top-level
    # value when a command's line does not give them
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks for errors")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, module_name in COMMANDS:
        module = importlib.import_module(f"hadna.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common])
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``key=value`` overrides of the training commands may come anywhere on the line
    (``hadna pretrain --config C --output-dir D optim.lr=1e-3``), not only right after ``--config C``."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        overrides = getattr(args, "overrides", None)
        if overrides is None or any(a.startswith("-") or "=" not in a for a in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(overrides) + extra
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .errors import HadnaError
    from .utils.allocator import tune_cpu_allocator
    from .utils.logging import setup_logging
    from .utils.network import downloads_allowed, set_hub_offline

    setup_logging(verbose=args.verbose)
    # Nothing reaches the network unless the user allowed it (a teacher config with local_files_only: false
    # switches it back on when that teacher is loaded).
    set_hub_offline(not downloads_allowed(args))
    tune_cpu_allocator()  # large tensors reuse heap memory instead of mmap + page faults at every call
    try:
        return int(args._module.run(args) or 0)
    except HadnaError as exc:
        if args.debug:
            raise
        print(f"hadna: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the user gave that cannot be created or written: an output folder that
        # is a file, no permission, a read-only or full disk (a missing input is a MissingFileError already,
        # so a bare FileNotFoundError, like any other OSError, is a bug and keeps its traceback)
        if args.debug or exc.filename is None or exc.errno not in _PATH_ERRNOS:
            raise
        what = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename2 is None:  # mkdir through a file
            import os
            path = os.fspath(exc.filename)
            while path and not os.path.exists(path):
                path = os.path.dirname(path)
            if path and os.path.isfile(path):
                exc.filename, what = path, "is a file, where a folder is needed"
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        print(f"hadna: error: {where}: {what} (--debug shows the traceback)", file=sys.stderr)
        return HadnaError.exit_code
    except KeyboardInterrupt:
        print("hadna: interrupted", file=sys.stderr)
        return 130
    finally:  # main() called from Python (a notebook, a script) leaves the process's Hub setting as it was
        set_hub_offline(False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
