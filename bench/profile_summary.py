"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the time goes.

    .venv/bin/python bench/profile_summary.py bench/results/logs-*/profile-client_credentials-c32.txt

Prints the functions with the most inclusive time (time with them on the stack) and the most
self time (time in them, at the top of the stack), as shares of all samples of busy threads.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

IDLE = re.compile(r"(select|poll|epoll|wait|accept|_recv_into|recv|sleep|acquire) \(")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="only frames containing this text in the inclusive list")
    args = parser.parse_args()

    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        n = int(count)
        if IDLE.search(leaf) and "handle_request" not in stack:
            continue  # an idle thread waiting for work, not time spent on a request
        total += n
        own[leaf] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} busy samples")
    print("\n-- inclusive")
    for frame, n in inclusive.most_common():
        if args.match and args.match not in frame:
            continue
        print(f"{100 * n / total:5.1f}%  {frame}")
        args.top -= 1
        if args.top <= 0:
            break
    print("\n-- self")
    for frame, n in own.most_common(25):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
