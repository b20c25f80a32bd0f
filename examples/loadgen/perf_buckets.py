#!/usr/bin/env python3
"""Where a recess node's CPU goes, by component, from a profile taken with
`loadgen --perf DIR` (see docs/performance.md):

    perf script -i DIR/NAME.data -F comm,tid,ip,sym --no-inline > NAME.txt
    python3 examples/loadgen/perf_buckets.py NAME.txt

Each sample counts once, for the first bucket (in the order below) whose
pattern appears anywhere in its call stack, so the shares add up to 100%.
"""
import collections
import sys

# (bucket, patterns): a sample goes to the first bucket one of whose patterns
# is part of a frame's symbol. Order matters: the specific before the general.
BUCKETS = [
    ("Lua rollback copy (GameVm::backup)", ["GameVm::backup"]),
    ("snapshot: state+members to JSON (SessionActor::snapshot)", ["SessionActor::snapshot", "GameVm::state_json"]),
    ("view diff (session::view::diff)", ["view::diff"]),
    ("view() calls + Lua->JSON (GameVm::view)", ["GameVm::view"]),
    ("view pass, rest (grouping, encode)", ["SessionActor::view_pass"]),
    ("sled apply_batch", ["apply_batch"]),
    ("sled flush/io threads", ["sled::"]),
    ("Lua handlers (action/join/timer/event)", ["GameVm::action", "GameVm::join", "player_call", "GameVm::timer", "GameVm::event", "GameVm::named_call", "GameVm::call"]),
    ("fanout deliver (try_send to writers)", ["Fanout::deliver"]),
    ("Redis client + cluster bus", ["cluster::redis", "redis::aio", "redis::"]),
    ("commit, rest", ["SessionActor::commit"]),
    ("socket write: kernel (sendto/writev)", ["__x64_sys_sendto", "__x64_sys_write", "__x64_sys_writev"]),
    ("socket write: user (write_loop, delivery::socket, tokio's try_io)", ["write_loop", "delivery::socket", "delivery::fanout", "Registration::try_io", "TcpStream::try_write"]),
    ("connection reader (read_loop, parse)", ["read_loop", "connection::serve", "Connection::on_text", "ClientFrame::parse"]),
    ("actor, rest", ["SessionActor"]),
    ("HTTP/REST (hyper, api)", ["hyper::", "recess::api"]),
    ("tokio scheduler/epoll/idle", ["tokio::runtime", "epoll", "futex"]),
]
def main(path):
    """Prints the share of samples per bucket, largest first."""
    counts = collections.Counter()
    total = 0
    stack = []
    def flush():
        nonlocal total
        if not stack:
            return
        total += 1
        text = "\n".join(stack)
        for name, pats in BUCKETS:
            if any(p in text for p in pats):
                counts[name] += 1
                break
        else:
            counts["other"] += 1
        stack.clear()
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("\t") or line.startswith(" "):
                parts = line.strip().split(" ", 1)
                if len(parts) == 2:
                    stack.append(parts[1])
            elif line.strip() == "":
                flush()
            else:
                flush()
        flush()
    for name, n in counts.most_common():
        print(f"{100.0*n/total:5.1f}%  {name}")
    print(f"({total} samples)")
if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: perf_buckets.py PERF_SCRIPT_OUTPUT")
    main(sys.argv[1])
