"""TensorFlow's start-up chatter is kept off stderr while models load, and nothing else is lost,
also when two models load at once from two threads."""
from __future__ import annotations

import os
import threading

from paipviewer.core.quiet import native_chatter_filtered

NOISE = "I0000 00:00:1700000000.000000  123 cpu_feature_guard.cc:182] oneDNN custom operations are on.\n"


def say(text: str) -> None:
    os.write(2, text.encode())


def test_chatter_is_dropped_and_real_messages_kept(capfd):
    with native_chatter_filtered():
        say(NOISE)
        say("real problem\n")
    say("after\n")
    err = capfd.readouterr().err
    assert err == "real problem\nafter\n"


def test_the_last_of_two_overlapping_loads_puts_stderr_back(capfd):
    a_in, b_in, a_out, b_done = (threading.Event() for _ in range(4))

    def first():
        with native_chatter_filtered():
            a_in.set()
            b_in.wait(10)
            say("from a\n")
        a_out.set()

    def second():
        a_in.wait(10)
        with native_chatter_filtered():
            b_in.set()
            a_out.wait(10)  # the first block has ended; this one still runs
            say(NOISE)
            say("from b\n")
        b_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert b_done.is_set()
    say("after\n")
    err = capfd.readouterr().err
    assert err == "from a\nfrom b\nafter\n"  # b's chatter filtered too, and nothing lost
