"""`workbench inside`: look inside a trained model (head effects, knock-out, logit lens, attention history).
"""

from __future__ import annotations

import json

from .args import number_type, unescape


def add_parsers(sub) -> None:
    ins = sub.add_parser("inside", help="look inside a run's model: head knock-out, every head's effect, "
                         "the logit lens, a token's attention across training",
                         description="Probe a trained model on a text (--probe; default: the run's "
                                     "training.probe_text). heads: the loss change when each head is zeroed; "
                                     "knockout L.H ...: the probe's predictions with those heads zeroed; lens: "
                                     "what each layer would predict; history: one query token's attention in "
                                     "every snapshot of the run. Layers and heads are numbered from 0.")
    ins.add_argument("view", choices=("heads", "knockout", "lens", "history"), help="what to show")
    ins.add_argument("run", metavar="RUN_DIR", help="run folder (or checkpoint .json; history needs a run folder)")
    ins.add_argument("heads", nargs="*", metavar="L.H", help="knockout: the heads to zero, e.g. 1.0 1.3")
    ins.add_argument("--probe", help="the text to probe (default: the run's training.probe_text)")
    ins.add_argument("--query", type=number_type(int, -100_000, 100_000), default=-1, help="history: the query token's index (default -1: the last)")
    ins.add_argument("--layer", type=number_type(int, 0, 10_000), default=None, help="history: only this layer (default: all)")
    ins.add_argument("--json", action="store_true", help="print JSON")


def cmd_inside(args) -> int:
    from workbench.engine import interpret
    from workbench.engine.errors import ConfigError

    if args.view == "history":
        hist = interpret.attention_history(args.run, args.query)
        if args.layer is not None and args.layer >= hist.rows.shape[1]:
            raise ConfigError(f"--layer {args.layer}: the model has layers 0-{hist.rows.shape[1] - 1}.")
        rows = hist.rows if args.layer is None else hist.rows[:, [args.layer]]
        if args.json:
            print(json.dumps({"query": hist.query, "tokens": hist.tokens, "steps": hist.steps,
                              "skipped": hist.skipped, "attention": rows.round(4).tolist()}))
            return 0
        print(f"query token {hist.query} {hist.tokens[hist.query]!r}: strongest key per snapshot, layer.head "
              f"(snapshots of another probe skipped: {hist.skipped})")
        for step, row in zip(hist.steps, rows):
            best = [f"{(args.layer if args.layer is not None else l)}.{h} "
                    f"{hist.tokens[int(row[l, h].argmax())]!r} {row[l, h].max():.2f}"
                    for l in range(row.shape[0]) for h in range(row.shape[1])]
            print(f"step {step:>7}: " + "  ".join(best))
        return 0

    from workbench.engine.loading import load_trained

    trained = load_trained(args.run, with_heads=False)
    text = args.probe if args.probe is not None else trained.experiment.training.probe_text
    if not text:
        raise ConfigError("no probe text: pass --probe TEXT (the run's training.probe_text is empty).")
    ids = trained.tokenizer.encode(unescape(text, "--probe"))
    model, tok = trained.model, trained.tokenizer
    if args.view == "heads":
        table = interpret.ablation_table(model, [ids])
        if args.json:
            print(json.dumps({"base_loss": table.base_loss, "delta": table.delta.round(5).tolist(),
                              "positions": table.positions}))
            return 0
        H = table.delta.shape[1]
        print(f"loss on the probe {table.base_loss:.4f} nats over {table.positions} tokens; change when a head "
              f"is zeroed (positive: the head helps):")
        print("layer " + "".join(f"{'head ' + str(h):>10}" for h in range(H)))
        for layer, row in enumerate(table.delta):
            print(f"{layer:>5} " + "".join(f"{v:>+10.4f}" for v in row))
        layer, head, value = table.strongest()
        print(f"strongest: head {layer}.{head} ({value:+.4f} nats)")
    elif args.view == "knockout":
        if not args.heads:
            raise ConfigError("knockout needs the heads to zero, e.g. `workbench inside knockout RUN 1.0 1.3`.")
        result = interpret.knock_out(model, tok, ids, _parse_heads(args.heads))
        if args.json:
            print(json.dumps({"heads": result.heads, "tokens": result.tokens, "delta": result.delta,
                              "base_losses": result.base_losses.round(5).tolist(),
                              "losses": result.losses.round(5).tolist(),
                              "base_top": result.base_top, "top": result.top}))
            return 0
        print(f"zeroed {', '.join(f'{l}.{h}' for l, h in result.heads)}: loss {result.base_losses.mean():.4f} -> "
              f"{result.losses.mean():.4f} nats; {len(result.changed_predictions())} of {len(result.top)} "
              f"predictions changed")
        print(f"{'after':>14} {'next':>8} {'intact':>8} {'zeroed':>8} {'loss':>16}")
        for i, (a, b) in enumerate(zip(result.base_top, result.top)):
            mark = " *" if a != b else ""
            print(f"{result.tokens[i]!r:>14} {result.tokens[i + 1]!r:>8} {a!r:>8} {b!r:>8} "
                  f"{result.base_losses[i]:>7.3f} -> {result.losses[i]:.3f}{mark}")
    else:
        lens = interpret.logit_lens(model, tok, ids)
        if args.json:
            print(json.dumps({"tokens": lens.tokens, "top": lens.top_texts, "top_probs": lens.top_probs.round(4).tolist(),
                              "next_probs": lens.next_probs.round(4).tolist()}))
            return 0
        print("what each layer predicts after each token (row 0: the embeddings alone; the last row is the model's "
              "prediction); probability of the token that really came next in brackets")
        for i, t in enumerate(lens.tokens):
            cells = [f"{lens.top_texts[l][i]!r} {lens.top_probs[l, i]:.2f}"
                     + (f" [{lens.next_probs[l, i]:.2f}]" if i < len(lens.tokens) - 1 else "")
                     for l in range(len(lens.top_texts))]
            print(f"{t!r:>12}: " + " | ".join(cells))
    return 0


def _parse_heads(specs: list[str]) -> list[tuple[int, int]]:
    from workbench.engine.errors import ConfigError

    heads = []
    for spec in specs:
        layer, dot, head = spec.partition(".")
        if not (dot and layer.isdigit() and head.isdigit()):
            raise ConfigError(f"head {spec!r}: write heads as LAYER.HEAD, numbered from 0, e.g. 1.0")
        heads.append((int(layer), int(head)))
    return heads
