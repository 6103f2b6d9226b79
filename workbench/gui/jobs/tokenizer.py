"""The Tokenizer page's job: train (or fetch from the cache) the tokenizer a run would use, and
measure it on a sample of the corpus."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.engine.config import CorpusConfig, Experiment, TokenizerConfig

CORPUS_SAMPLE_CHARS = 200_000


@dataclass
class TrainedTokenizer:
    tokenizer: object          # engine.tokenizer.Tokenizer
    kind: str
    vocab_size: int
    sample_chars: int          # characters of the corpus sample
    sample_tokens: int
    sample_distinct: int       # distinct token ids in the sample


def train_for_panel(state, corpus_cfg: CorpusConfig, tok_cfg: TokenizerConfig) -> TrainedTokenizer:
    """Train (or fetch from the cache) the tokenizer a run with these settings would use."""
    from workbench.engine.corpus import Corpus
    from workbench.engine.events import Status
    from workbench.engine.tokenizer import prepare_tokenizer

    class _Reporter:
        def report(self, event) -> None:
            if isinstance(event, Status):
                state.progress(event.message)

    state.progress("Reading the corpus")
    corpus = Corpus.from_config(corpus_cfg)
    exp = Experiment(corpus=corpus_cfg, tokenizer=tok_cfg)
    tok = prepare_tokenizer(exp, corpus, reporter=_Reporter(), should_stop=state.should_stop)
    state.check()
    state.progress("Measuring on a sample of the corpus")
    texts, n = [], 0
    for piece in corpus.pieces(max_chars=16384):
        texts.append(piece.text)
        n += len(piece.text)
        if n >= CORPUS_SAMPLE_CHARS or state.should_stop():
            break
    state.check()
    ids = [i for chunk in tok.encode_batch(texts) for i in chunk]
    return TrainedTokenizer(tok, tok.kind, tok.vocab_size, n, len(ids), len(set(ids)))
