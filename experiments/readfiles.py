"""Reading what cellc writes (sweep.csv, sweep.json, summary.json, metrics.csv) strictly: a file that
is not UTF-8, not JSON or cut short raises Damaged, whose message names the file and the line, so
the scripts (plot.py, plot_sweep.py, summarize.py) answer with one line instead of a traceback."""

import csv
import io
import json


class Damaged(ValueError):
    """A file that is not what cellc writes (not UTF-8, not JSON, cut short): its message names the
    file and the line, for a one-line error instead of a traceback."""


def read_text(path):
    """A file's text, which must be UTF-8 (cellc writes nothing else); Damaged naming the file and
    the line of the first bad byte otherwise. OSError as open() raises it."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise Damaged(f"{path} line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}): "
                      "a damaged file?") from None


def read_json(path):
    """A JSON file (read_text's checks); Damaged naming the file and the line of a syntax error (a
    file cut short ends in one)."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise Damaged(f"{path} line {e.lineno}: not valid JSON ({e.msg}): cut short or "
                      "damaged?") from None


def csv_rows(path, text):
    """(line number, fields) of a CSV text, the header included; Damaged naming the line where the
    csv module gives up (a NUL byte, a quote left open at the end of a file cut short)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for fields in reader:
            yield reader.line_num, fields
    except csv.Error as e:
        raise Damaged(f"{path} line {reader.line_num}: not CSV ({e}): cut short or damaged?") from None
