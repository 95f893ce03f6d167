#!/usr/bin/env python3
"""Runs the guide's and the examples' code blocks, so the docs cannot drift from the code.

    python3 scripts/doc-tests.py                 # every page in PAGES
    python3 scripts/doc-tests.py examples/rag/README.md --verbose
    python3 scripts/doc-tests.py --list          # what would run, block by block

Each page runs like a reader at a terminal would run it: its blocks in order, in ONE bash session
(`set -euo pipefail`), so a `cd`, a variable or a server started in the background (`quiver serve … &`) carries over
to the next block. The working directory is a fresh scratch directory holding a symbolic link to each top-level
entry of the repository (`scripts/`, `examples/`, `testdata/`, `docs/` … resolve; whatever a block writes lands in
the scratch directory), and `quiver` on PATH is the build under test (`$QUIVER_BIN`, else
`$CARGO_TARGET_DIR/debug/quiver`). When the page ends, everything it started is killed (its process group).

Fences:
- ```sh / ```bash / ```console-free shell: run in the page's bash session;
- ```python: written to a file and run with `python3` from the same session (same directory and environment);
- anything else (```text, ```json, ```sql, …): not run.

Directives, HTML comments right before a fence (they apply to that fence only):
- `<!-- doctest: replace OLD NEW -->`: run the block with the token OLD replaced by NEW. This is how a benchmark
  printed for the 100k set runs on the small committed set in CI; the reader sees the real command.
- `<!-- doctest: output -->` before a ```text block: every non-blank line of it must appear (trimmed, as a
  substring) in what the previous run block printed.

A failure prints the page, the block's line, its code and the tail of what it printed, and exits 1.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["docs/concepts.md", "docs/vs-databases.md", "examples/*/README.md"]
RUN = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}
DIRECTIVE = re.compile(r"^\s*<!--\s*doctest:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([A-Za-z0-9_+-]*)")


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str  # the fence's info word
    code: str
    directives: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str | None:
        return RUN.get(self.lang)

    def runnable_code(self) -> str:
        code = self.code
        for d in self.directives:
            words = shlex.split(d)
            if words[0] == "replace":
                old, new = words[1], words[2]
                if old not in code:
                    raise SystemExit(f"{self.page}:{self.line}: doctest replace: {old!r} is not in the block")
                code = code.replace(old, new)
        return code


def parse(page: str) -> list[Block]:
    """The fenced blocks of a Markdown page, with the directives right before each."""
    lines = open(os.path.join(ROOT, page), encoding="utf-8").read().split("\n")
    blocks: list[Block] = []
    pending: list[str] = []
    i = 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if m:
            words = shlex.split(m.group(1))
            if not words or words[0] not in ("replace", "output"):
                raise SystemExit(f"{page}:{i + 1}: unknown doctest directive {m.group(1)!r}")
            if words[0] == "replace" and len(words) != 3:
                raise SystemExit(f"{page}:{i + 1}: `doctest: replace` takes OLD and NEW, got {m.group(1)!r}")
            pending.append(m.group(1))
            i += 1
            continue
        f = FENCE.match(lines[i])
        if not f:
            if lines[i].strip() and pending:
                raise SystemExit(f"{page}:{i + 1}: doctest directive(s) {pending} are not right before a fence")
            i += 1
            continue
        indent, fence, lang = f.group(1), f.group(2), f.group(3).lower()
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            ln = lines[i]
            body.append(ln[len(indent):] if ln.startswith(indent) else ln.lstrip())
            i += 1
        if i >= len(lines):
            raise SystemExit(f"{page}:{start + 1}: the fence is never closed")
        blocks.append(Block(page, start + 1, lang, "\n".join(body) + "\n", pending))
        pending = []
        i += 1
    for b in blocks:
        if any(shlex.split(d)[0] == "replace" for d in b.directives) and b.kind is None:
            raise SystemExit(f"{page}:{b.line}: `doctest: replace` before a block that is not run ({b.lang})")
        if "output" in b.directives and b.lang != "text":
            raise SystemExit(f"{page}:{b.line}: `doctest: output` belongs before a ```text block")
    return blocks


def quiver_bin() -> str:
    if os.environ.get("QUIVER_BIN"):
        return os.environ["QUIVER_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug", "quiver")


def scratch_dir() -> str:
    d = tempfile.mkdtemp(prefix="quiver-doctest-")
    for name in os.listdir(ROOT):
        if name in (".git", "target"):
            continue
        os.symlink(os.path.join(ROOT, name), os.path.join(d, name))
    return d


def run_page(page: str, blocks: list[Block], timeout: float, verbose: bool) -> bool:
    runnable = [b for b in blocks if b.kind]
    if not runnable:
        print(f"FAIL {page}: no block to run")
        return False
    work = scratch_dir()
    meta = tempfile.mkdtemp(prefix="quiver-doctest-blocks-")
    script = ["set -euo pipefail"]
    for n, b in enumerate(runnable):
        script.append(f"echo '@@doctest {n}'")
        code = b.runnable_code()
        if b.kind == "python":
            path = os.path.join(meta, f"block{n}.py")
            open(path, "w", encoding="utf-8").write(code)
            script.append(f"python3 {shlex.quote(path)}")
        else:
            script.append(code)
    script.append("echo '@@doctest end'")
    env = dict(os.environ)
    binary = quiver_bin()
    if not os.access(binary, os.X_OK):
        print(f"FAIL {page}: no quiver binary at {binary} (build it, or set QUIVER_BIN)")
        return False
    env["PATH"] = os.path.dirname(os.path.abspath(binary)) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    started = time.monotonic()
    proc = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, text=True, errors="replace")
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    finally:
        _kill_group(proc.pid)  # servers and anything else the page left running
    took = time.monotonic() - started
    # Split what was printed by block.
    outputs: dict[int, list[str]] = {}
    current = -1
    finished = False
    for ln in out.split("\n"):
        m = re.fullmatch(r"@@doctest (\d+|end)", ln)
        if m:
            if m.group(1) == "end":
                finished = True
            else:
                current = int(m.group(1))
                outputs[current] = []
            continue
        outputs.setdefault(current, []).append(ln)
    ok = finished and proc.returncode == 0 and not timed_out
    failed_at = max(outputs) if outputs else 0
    if ok:
        # Check the ```text blocks marked as output against the run block before each.
        last_run = None
        for b in blocks:
            if b.kind:
                last_run = runnable.index(b)
            elif "output" in b.directives:
                if last_run is None:
                    print(f"FAIL {page}:{b.line}: an output block with no run block before it")
                    ok = False
                    break
                printed = "\n".join(outputs.get(last_run, []))
                missing = [ln.strip() for ln in b.code.split("\n") if ln.strip() and ln.strip() not in printed]
                if missing:
                    print(f"FAIL {page}:{b.line}: the output shown is not what block at line "
                          f"{runnable[last_run].line} printed; missing: {missing[:5]}")
                    print(_tail(outputs.get(last_run, [])))
                    ok = False
                    failed_at = None
                    break
    if ok:
        print(f"ok   {page}: {len(runnable)} blocks in {took:.1f} s")
        if verbose:
            for n, b in enumerate(runnable):
                print(f"--- {page}:{b.line}\n{_tail(outputs.get(n, []))}")
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(meta, ignore_errors=True)
        return True
    if failed_at is not None:
        b = runnable[failed_at]
        why = f"timed out after {timeout:.0f} s" if timed_out else f"exit status {proc.returncode}"
        print(f"FAIL {page}:{b.line} ({b.lang} block {failed_at + 1} of {len(runnable)}): {why}")
        print("--- code\n" + b.runnable_code().rstrip())
        print("--- printed (tail)\n" + _tail(outputs.get(failed_at, [])))
    print(f"     scratch directory kept: {work}")
    return False


def _kill_group(pgid: int) -> None:
    """Kills a page's process group and waits until it is gone, so the next page can bind the same port."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _tail(lines: list[str], n: int = 40) -> str:
    return "\n".join(lines[-n:]).rstrip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="*", help="Markdown pages (default: the guide and every examples/*/README.md)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per page (default 600)")
    ap.add_argument("--list", action="store_true", help="print the blocks that would run, and stop")
    ap.add_argument("--verbose", action="store_true", help="print every block's output")
    a = ap.parse_args()
    pages = a.pages or [p for pat in PAGES for p in sorted(glob.glob(pat, root_dir=ROOT))]
    missing = [p for p in pages if not os.path.isfile(os.path.join(ROOT, p))]
    if missing:
        print(f"no such page: {', '.join(missing)}")
        return 2
    parsed = {p: parse(p) for p in pages}
    if a.list:
        for p, blocks in parsed.items():
            for b in blocks:
                if b.kind:
                    print(f"{p}:{b.line} [{b.lang}]" + "".join(f" <{d}>" for d in b.directives))
        return 0
    failed = [p for p, blocks in parsed.items() if not run_page(p, blocks, a.timeout, a.verbose)]
    if failed:
        print(f"{len(failed)} of {len(pages)} pages failed: {', '.join(failed)}")
        return 1
    print(f"all {len(pages)} pages ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
