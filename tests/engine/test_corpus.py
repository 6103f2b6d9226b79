"""Corpus reading: counts, formats, errors a person can act on, bounded pieces, fingerprints."""

import itertools
import platform
import re
import string

import pytest

from workbench.engine import builtin_corpora
from workbench.engine.config import CorpusConfig
from workbench.engine.corpus import READ_BYTES, Corpus, Piece, builtin_names, describe_builtin
from workbench.engine.errors import CorpusError


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def text_of(corpus, max_chars=1 << 20):
    return "".join(p.text for p in corpus.pieces(max_chars))


def documents_of(corpus, max_chars=1 << 20):
    docs = []
    for piece in corpus.pieces(max_chars):
        if piece.new_document:
            docs.append("")
        docs[-1] += piece.text
    return docs


def corpus_error(match_all, *args, **kwargs):
    """Build the corpus and read it all; return the CorpusError's message after checking it."""
    with pytest.raises(CorpusError) as info:
        corpus = Corpus(*args, **kwargs)
        corpus.stats()
    message = str(info.value)
    for part in match_all:
        assert part in message, f"{part!r} not in {message!r}"
    return message


# -- plain text ----------------------------------------------------------------------------------


def test_text_file_stats_count_multibyte_utf8(tmp_path):
    text = "héllo wörld ✓\nsecond line"  # no newline at the end: still two lines
    path = write(tmp_path / "a.txt", text)
    stats = Corpus([str(path)]).stats()
    (source,) = stats.sources
    assert source.source == str(path) and source.kind == "text"
    assert source.files == 1 and source.documents == 1
    assert source.bytes == len(text.encode("utf-8")) == path.stat().st_size
    assert source.chars == len(text)
    assert source.lines == 2
    assert (stats.files, stats.bytes, stats.chars, stats.lines, stats.documents) == (
        1, source.bytes, len(text), 2, 1)


def test_windows_newlines_and_byte_order_mark_are_normalised(tmp_path):
    path = write(tmp_path / "win.txt", b"\xef\xbb\xbfone\r\ntwo\rthree\r\n")
    corpus = Corpus([str(path)])
    assert text_of(corpus) == "one\ntwo\nthree\n"
    assert corpus.stats().sources[0].lines == 3


def test_character_cut_by_the_read_buffer_decodes_whole(tmp_path):
    text = "a" * (READ_BYTES - 1) + "é" + "z"  # é's two bytes straddle the first read
    path = write(tmp_path / "edge.txt", text)
    assert text_of(Corpus([str(path)])) == text


def test_file_with_unknown_suffix_named_alone_is_read_as_text(tmp_path):
    path = write(tmp_path / "input", "plain words\n")
    corpus = Corpus([str(path)])
    assert corpus.stats().sources[0].kind == "text"
    assert text_of(corpus) == "plain words\n"


# -- folders -------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "docs"
    write(root / "b.txt", "bee\n")
    write(root / "a.md", "# ay\n")
    write(root / "sub" / "c.txt", "sea\n")
    write(root / "sub" / "d.jsonl", '{"text": "dee"}\n{"text": "ee"}\n')
    write(root / "image.png", b"\x89PNG\x00\x00")  # unknown suffix: skipped, not called binary
    write(root / "empty.txt", "")  # an empty __init__.py and the like: skipped
    write(root / ".git" / "HEAD.txt", "hidden\n")
    return root


def test_folder_reads_known_files_sorted_by_path(folder):
    corpus = Corpus([str(folder)])
    assert documents_of(corpus) == ["# ay\n", "bee\n", "sea\n", "dee", "ee"]
    (source,) = corpus.stats().sources
    assert (source.kind, source.files, source.documents, source.lines) == ("folder", 4, 5, 5)
    assert source.bytes == sum((folder / n).stat().st_size
                               for n in ("a.md", "b.txt", "sub/c.txt", "sub/d.jsonl"))


def test_folder_glob_filters_files(folder):
    assert documents_of(Corpus([str(folder)], glob="**/*.txt")) == ["bee\n", "sea\n"]
    assert documents_of(Corpus([str(folder)], glob="*.txt")) == ["bee\n"]  # top level only


def test_folder_where_glob_matches_nothing_names_the_glob(folder):
    corpus_error([str(folder), '"**/*.csv"'], [str(folder)], glob="**/*.csv")


def test_empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    corpus_error([str(tmp_path / "nothing"), "no readable file"], [str(tmp_path / "nothing")])


# -- JSONL, CSV, TSV -----------------------------------------------------------------------------


def test_jsonl_records_are_documents(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "first", "id": 1}\n\n{"body": "x", "text": "zweite ü"}\n'
                                       '{"text": null}\n{"text": ""}\n{"text": "third\\nline"}')
    corpus = Corpus([str(path)])
    assert documents_of(corpus) == ["first", "zweite ü", "third\nline"]
    (source,) = corpus.stats().sources
    assert (source.kind, source.documents, source.lines, source.chars) == ("jsonl", 3, 4, 23)
    assert source.bytes == path.stat().st_size


def test_jsonl_field_choice_and_nested_field(tmp_path):
    path = write(tmp_path / "q.jsonl", '{"question": {"stem": "Why?", "n": 2}, "body": "b1"}\n'
                                       '{"question": {"stem": "How?"}, "body": "b2"}\n')
    assert documents_of(Corpus([str(path)], text_field="body")) == ["b1", "b2"]
    assert documents_of(Corpus([str(path)], text_field="question.stem")) == ["Why?", "How?"]


def test_csv_rows_are_documents_with_quoted_fields(tmp_path):
    path = write(tmp_path / "t.csv", 'id,text,label\n1,"hello, world",0\n\n2,"two\nlines ""quoted""",1\n')
    corpus = Corpus([str(path)])
    assert documents_of(corpus) == ["hello, world", 'two\nlines "quoted"']
    assert corpus.stats().sources[0].documents == 2


def test_tsv_uses_tabs_and_keeps_stray_quotes(tmp_path):
    path = write(tmp_path / "t.tsv", 'sentence\tlabel\nit \'s fine , "really\t1\n"a ""b"" c"\t0\n')
    corpus = Corpus([str(path)], text_field="sentence")
    # An unclosed quote is text in TSV; a field wrapped in quotes by a CSV writer is unwrapped.
    assert documents_of(corpus) == ['it \'s fine , "really', 'a "b" c']
    assert corpus.stats().sources[0].kind == "tsv"


def test_several_sources_are_read_in_the_order_given(tmp_path):
    a = write(tmp_path / "a.txt", "alpha\n")
    b = write(tmp_path / "b.jsonl", '{"text": "beta"}\n')
    corpus = Corpus([str(b), str(a), "builtin:copy"])
    pieces = list(itertools.islice(corpus.pieces(max_chars=4096), 3))
    assert pieces[0] == Piece("beta", True) and pieces[1] == Piece("alpha\n", True)
    assert re.fullmatch(r"[a-p]+>[a-p]+\n", pieces[2].text.split("\n")[0] + "\n")
    stats = Corpus([str(b), str(a)]).stats()  # (built-ins are counted in their own tests)
    assert [s.kind for s in stats.sources] == ["jsonl", "text"]
    assert (stats.files, stats.documents, stats.chars, stats.lines) == (2, 2, 10, 2)


def test_from_config():
    corpus = Corpus.from_config(CorpusConfig(paths=("builtin:brackets",)))
    assert corpus.sources == ("builtin:brackets",)
    assert corpus.encoding_errors == "strict" and corpus.text_field == "text"


# -- errors that name the file and what to do ----------------------------------------------------


def test_missing_path(tmp_path):
    corpus_error(["nope.txt", "no such file"], [str(tmp_path / "nope.txt")])


def test_empty_file(tmp_path):
    path = write(tmp_path / "empty.txt", "")
    corpus_error([str(path), "empty"], [str(path)])


def test_binary_file(tmp_path):
    path = write(tmp_path / "data.txt", b"abc\x00\x01\x02" * 10)
    corpus_error([str(path), "binary"], [str(path)])


def test_invalid_utf8_names_the_byte_offset_across_reads(tmp_path):
    # a two-byte character straddles the first read, then a bad byte sits in the second read
    data = b"a" * (READ_BYTES - 1) + "é".encode() + b"bc" + b"\xff" + b"tail"
    path = write(tmp_path / "latin.txt", data)
    bad = data.index(b"\xff")
    assert bad == READ_BYTES + 3
    corpus_error([str(path), f"byte {bad}", "0xff", 'encoding_errors = "replace"'], [str(path)])


def test_truncated_character_at_the_end(tmp_path):
    path = write(tmp_path / "cut.txt", b"ok " + "€".encode()[:2])
    corpus_error([str(path), "byte 3"], [str(path)])


def test_replace_mode_reads_on(tmp_path):
    path = write(tmp_path / "latin.txt", "caf".encode() + b"\xe9 ok\n")
    corpus = Corpus([str(path)], encoding_errors="replace")
    assert text_of(corpus) == "caf\ufffd ok\n"
    assert corpus.stats().sources[0].chars == 8


def test_unknown_encoding_errors_mode():
    corpus_error(["encoding_errors", "strict", "replace"], ["builtin:toy"], encoding_errors="ignore")


def test_malformed_jsonl_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"text": "a"}\n\n{"text": "b",,}\n')
    corpus_error([str(path), "line 3", "not valid JSON"], [str(path)])


def test_jsonl_record_that_is_not_an_object(tmp_path):
    path = write(tmp_path / "list.jsonl", '{"text": "a"}\n["text", "b"]\n')
    corpus_error([str(path), "line 2", "a list"], [str(path)])


def test_jsonl_missing_field_lists_fields(tmp_path):
    path = write(tmp_path / "f.jsonl", '{"text": "a"}\n{"txt": "b", "id": 7, "meta": {"lang": "en"}}\n')
    message = corpus_error([str(path), "line 2", 'no field "text"', 'did you mean "txt"',
                            "txt, id, meta, meta.lang"], [str(path)])
    assert "corpus.text_field" in message


def test_jsonl_field_holding_an_object_lists_its_fields(tmp_path):
    path = write(tmp_path / "q.jsonl", '{"question": {"stem": "Why?", "choices": []}}\n')
    corpus_error([str(path), "line 1", "an object", "question.stem, question.choices"],
                 [str(path)], text_field="question")


def test_csv_missing_column_lists_columns(tmp_path):
    path = write(tmp_path / "t.csv", "sentence,label\nhi,1\n")
    corpus_error([str(path), 'no column "sentense"', 'did you mean "sentence"', "sentence, label"],
                 [str(path)], text_field="sentense")


def test_csv_ragged_row_names_the_line(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\nok,1\nalso ok,0\ntoo,many,fields\n")
    corpus_error([str(path), "line 4", "3 fields", "header has 2"], [str(path)])


def test_tsv_ragged_row_names_the_line(tmp_path):
    path = write(tmp_path / "t.tsv", "text\tlabel\nok\t1\nmissing label\n")
    corpus_error([str(path), "line 3", "tabs"], [str(path)])


def test_file_without_any_text(tmp_path):
    path = write(tmp_path / "header_only.csv", "text,label\n")
    corpus_error([str(path), "no text"], [str(path)])


def test_unknown_builtin_lists_builtins():
    corpus_error(['"builtin:toi"', 'did you mean "toy"', "builtin:toy", "builtin:stdlib"],
                 ["builtin:toi"])


# -- pieces ---------------------------------------------------------------------------------------


def test_long_single_line_comes_out_in_bounded_pieces(tmp_path):
    text = (string.ascii_lowercase * 120_000)[:3_000_000]  # 3 MB, no newline, no space
    path = write(tmp_path / "one_line.txt", text)
    pieces = list(Corpus([str(path)]).pieces(max_chars=8192))
    assert all(0 < len(p.text) <= 8192 for p in pieces)
    assert "".join(p.text for p in pieces) == text
    assert [p.new_document for p in pieces] == [True] + [False] * (len(pieces) - 1)


def test_pieces_cut_after_newlines_else_before_spaces(tmp_path):
    words = write(tmp_path / "words.txt", "word " * 5000)
    pieces = [p.text for p in Corpus([str(words)]).pieces(max_chars=100)]
    assert "".join(pieces) == "word " * 5000
    assert all(len(p) <= 100 for p in pieces)
    assert all(p.startswith(" word") for p in pieces[1:])  # the space stays with its word

    lines = write(tmp_path / "lines.txt", "a line of text\n" * 1000)
    pieces = [p.text for p in Corpus([str(lines)]).pieces(max_chars=100)]
    assert "".join(pieces) == "a line of text\n" * 1000
    assert all(len(p) <= 100 and p.endswith("\n") for p in pieces)


def test_new_document_flags_mark_each_document(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "short"}\n{"text": "%s"}\n{"text": "end"}\n' % ("x" * 25))
    pieces = list(Corpus([str(path)]).pieces(max_chars=10))
    assert [(p.text, p.new_document) for p in pieces] == [
        ("short", True), ("x" * 10, True), ("x" * 10, False), ("x" * 5, False), ("end", True)]


# -- fingerprints -------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_follows_content(tmp_path):
    path = write(tmp_path / "a.txt", "some text\n")
    first = Corpus([str(path)]).fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert Corpus([str(path)]).fingerprint() == first
    write(tmp_path / "a.txt", "some text!\n")
    assert Corpus([str(path)]).fingerprint() != first


def test_fingerprint_follows_options_and_folder_contents(tmp_path, folder):
    base = Corpus([str(folder)]).fingerprint()
    assert Corpus([str(folder)], text_field="body").fingerprint() != base
    assert Corpus([str(folder)], encoding_errors="replace").fingerprint() != base
    assert Corpus([str(folder)], glob="**/*.txt").fingerprint() != base
    write(folder / "sub" / "new.md", "new\n")
    assert Corpus([str(folder)]).fingerprint() != base


def test_fingerprint_ignores_where_the_corpus_lies(tmp_path):
    a = write(tmp_path / "one" / "c.txt", "same\n")
    b = write(tmp_path / "two" / "c.txt", "same\n")
    assert Corpus([str(a)]).fingerprint() == Corpus([str(b)]).fingerprint()


def test_builtin_fingerprints_are_stable_and_distinct():
    prints = {name: Corpus([f"builtin:{name}"]).fingerprint() for name in builtin_names()}
    assert len(set(prints.values())) == len(prints)
    assert Corpus(["builtin:toy"]).fingerprint() == prints["toy"]
    assert platform.python_version() in builtin_corpora.BUILTINS["stdlib"].identity()


# -- built-in corpora -----------------------------------------------------------------------------


def test_builtin_names_and_descriptions():
    names = builtin_names()
    assert [n for n in names if n in ("toy", "copy", "reverse", "brackets", "stdlib")] == [
        "toy", "copy", "reverse", "brackets", "stdlib"]
    for name in builtin_names():
        line = describe_builtin(name)
        assert line.startswith(f"builtin:{name}: ") and "\n" not in line
    assert describe_builtin("builtin:toy") == describe_builtin("toy")


def check_toy_line(line):
    assert 0 < len(line) < 60
    if ">" in line:
        left, right = line.split(">")
        assert re.fullmatch(r"[a-p]+", left) and right == left
        assert len(set(left)) == len(left)  # distinct letters: each is found once
    elif "<" in line:
        left, right = line.split("<")
        assert re.fullmatch(r"[a-p]+", left) and right == left[::-1]
    else:
        left, right = line.split("|")
        stack = []
        for b in left + right:
            if b in "([{":
                stack.append(b)
            else:
                assert stack and "([{".index(stack.pop()) == ")]}".index(b)
        assert not stack and right and set(right) <= set(")]}")


def test_toy_lines_follow_their_tasks():
    text = "".join(builtin_corpora.generate(builtin_corpora.BUILTINS["toy"].tasks, size_chars=50_000))
    lines = text.splitlines()
    assert text.endswith("\n") and len(text) >= 50_000
    for line in lines:
        check_toy_line(line)
    kinds = {">" if ">" in line else "<" if "<" in line else "|" for line in lines}
    assert kinds == {">", "<", "|"}


def test_single_task_builtins_hold_only_their_task():
    for name, sep in [("copy", ">"), ("reverse", "<"), ("brackets", "|")]:
        piece = next(Corpus([f"builtin:{name}"]).pieces(max_chars=4096))
        lines = piece.text.rstrip("\n").split("\n")
        assert all(sep in line for line in lines), name
        for line in lines:
            check_toy_line(line)


def test_demo_lines_are_five_letter_copies_of_one_shape():
    piece = next(Corpus(["builtin:demo"]).pieces(max_chars=4096))
    lines = piece.text.rstrip("\n").split("\n")
    assert len(lines) > 300
    for line in lines:
        assert re.fullmatch(r"[a-p]{5}>[a-p]{5}", line)  # every line 12 characters with its newline
        check_toy_line(line)


def test_toy_is_deterministic_and_about_a_megabyte():
    head = [p.text for _, p in zip(range(3), Corpus(["builtin:toy"]).pieces(max_chars=5000))]
    again = [p.text for _, p in zip(range(3), Corpus(["builtin:toy"]).pieces(max_chars=5000))]
    assert head == again and head[0]
    (source,) = Corpus(["builtin:toy"]).stats().sources
    assert source.kind == "builtin" and source.documents == 1 and source.files == 0
    size = builtin_corpora.SIZE_CHARS
    assert size <= source.chars < size + 60 and source.bytes == source.chars


def test_stdlib_is_python_code_within_its_cap():
    corpus = Corpus(["builtin:stdlib"])
    (source,) = corpus.stats().sources
    assert source.documents == source.files > 50
    assert 0.5 * builtin_corpora.STDLIB_MAX_BYTES < source.bytes <= builtin_corpora.STDLIB_MAX_BYTES
    files = builtin_corpora.stdlib_files()
    assert [f.as_posix() for f in files] == sorted(f.as_posix() for f in files)
    assert not any(set(f.parts) & {"test", "tests", "idlelib", "site-packages"} for f in files)
    code = text_of(corpus)
    assert code.count("\ndef ") + code.count("    def ") > 1000 and code.count("import ") > 200
