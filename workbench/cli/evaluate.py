"""`workbench eval` (in-context evaluation on labelled data) and `workbench generate` (sampling):
the commands that load a trained model and run it.
"""

from __future__ import annotations

import sys
import time

from .args import MAX_SHOTS, SAMPLING, SEED, THREADS, check_out_file, number_type, unescape


def add_parsers(sub) -> None:
    e = sub.add_parser("eval", help="zero/one/few-shot in-context evaluation of a run on labelled data",
                       description="Score every label's verbalizer (or every choice) after a prompt of k "
                                   "demonstrations and the query; print accuracy for each k over several "
                                   "draws of demonstrations. Templates take \\n for a line break. With "
                                   "--data builtin:icl it also prints look-back scores: how much attention a "
                                   "repeated key pays to its earlier copies and the values after them.")
    e.add_argument("run", metavar="RUN_DIR", help="run folder (or checkpoint .json) to evaluate")
    e.add_argument("--data", required=True, help='labelled .csv/.tsv/.jsonl file, or "builtin:icl" '
                   '(builtin:icl:N for a mapping of N keys) to go with the icl_keyvalue preset')
    e.add_argument("--demos", metavar="FILE", help="draw demonstrations from this file (same columns); "
                   "default: 20%% of --data is held out for them")
    e.add_argument("--text", default="text", metavar="COL", help="column with the input text (default text)")
    e.add_argument("--text-pair", default="", metavar="COL", help="column with the second text of a pair")
    e.add_argument("--label", default="", metavar="COL", help="column with the label")
    e.add_argument("--choices", default="", metavar="COL[,COL...]",
                   help="multiple choice: columns of the options, or one column holding a list")
    e.add_argument("--answer", default="", metavar="COL", help="multiple choice: column naming the right option")
    e.add_argument("--answer-base", type=number_type(int, setting=("workbench.engine.config", "TaskConfig", "answer_base")),
                   default=0, help="numbered answers count from this (COPA: 1)")
    e.add_argument("--verbalizer", default="", metavar="LABEL=WORD,...",
                   help="the word each label is shown as, e.g. 0=negative,1=positive")
    e.add_argument("--template", help=r'input template with {text} and {text_pair} (default "{text}\nAnswer:")')
    e.add_argument("--answer-template", help='answer template with {answer} (default " {answer}")')
    e.add_argument("--separator", help=r'between the parts of a prompt (default "\n\n")')
    e.add_argument("--description", default="", help="task description put before the demonstrations")
    e.add_argument("--k", default="0,1,2,4,8", help="numbers of demonstrations (default 0,1,2,4,8)")
    e.add_argument("--draws", type=number_type(int, 1, 10_000), default=5,
                   help="random draws of demonstrations per k (default 5)")
    e.add_argument("--length-norm", action="store_true", help="score answers by mean, not summed, log-likelihood")
    e.add_argument("--limit", type=number_type(int, 1, 10**9), metavar="N", help="evaluate the first N test examples only")
    e.add_argument("--seed", type=number_type(int, setting=SEED), default=0,
                   help="seed of the demonstration draws (default 0)")
    e.add_argument("--attention", type=number_type(int, 0, 100_000), default=16, metavar="N",
                   help="measure the query's attention to each demonstration on N prompts at the largest k "
                        "(default 16; 0: skip)")
    e.add_argument("--show-prompt", type=number_type(int, 0, MAX_SHOTS), metavar="K",
                   help="print the first test example's prompt with K demonstrations")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    e.add_argument("--threads", type=number_type(int, setting=THREADS), default=0,
                   help="CPU threads (default 0: PyTorch's choice; at most 4 x the cores)")
    e.add_argument("--out", metavar="FILE", help="write the results as JSON to this file (a new file or earlier "
                   "results; never inside a run folder)")

    gn = sub.add_parser("generate", help="sample text from a run's model, streamed as it is generated")
    gn.add_argument("run", metavar="RUN_DIR", help="run folder (or checkpoint .json)")
    gn.add_argument("--prompt", default="", help="text to continue (default: start from <|endoftext|>)")
    gn.add_argument("--max-tokens", type=number_type(int, setting=(*SAMPLING, "max_tokens")), default=200,
                    help="tokens to generate (default 200)")
    gn.add_argument("--temperature", type=number_type(float, setting=(*SAMPLING, "temperature")), default=0.8,
                    help="0: greedy; higher: more varied (default 0.8)")
    gn.add_argument("--top-k", type=number_type(int, setting=(*SAMPLING, "top_k")), default=50,
                    help="sample among the k most likely tokens (0: all; default 50)")
    gn.add_argument("--top-p", type=number_type(float, setting=(*SAMPLING, "top_p")), default=0.95,
                    help="sample within this much probability (1: all; default 0.95)")
    gn.add_argument("--seed", type=number_type(int, setting=(*SAMPLING, "seed")), default=0,
                    help="random seed (default 0)")
    gn.add_argument("--no-echo", action="store_true", help="print only the generated text, not the prompt")
    gn.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    gn.add_argument("--threads", type=number_type(int, setting=THREADS), default=0,
                    help="CPU threads (default 0: PyTorch's choice; at most 4 x the cores)")


def cmd_eval(args) -> int:
    from workbench.engine.config import check_range
    from workbench.engine.device import resolve_device
    from workbench.engine.errors import ConfigError
    from workbench.engine.evaluate import evaluate_in_context
    from workbench.engine.loading import load_trained

    try:
        ks = [check_range(int(k), "--k", {"min": 0, "max": MAX_SHOTS}) for k in args.k.split(",") if k.strip()]
    except ValueError:
        raise ConfigError(f"--k {args.k!r}: give numbers of demonstrations separated by commas, "
                          f"e.g. 0,1,2,4,8.") from None
    if args.out:
        from workbench.engine.evaluate import check_results_path

        check_out_file(args.out, "--out")  # before the evaluation, not after it
        check_results_path(args.out)
    task = _icl_task_from_args(args)
    _set_threads(args.threads)
    trained = load_trained(args.run, resolve_device(args.device, "--device"), with_heads=False)
    if args.show_prompt is not None:
        p = task.prompt(0, args.show_prompt, 0, tokenizer=trained.tokenizer,
                        block_size=trained.model.config.block_size)
        print(f"--- prompt of test example 1 with k = {args.show_prompt} ({p.demos_used} demonstrations fit, "
              f"{len(p.ids)} tokens) ---\n{p.text}\n--- answers: {p.answers} (right: {p.answers[p.gold]!r}) ---")
    tty = sys.stderr.isatty()

    def progress(done, total):
        if tty:
            sys.stderr.write(f"\r\033[Kscoring prompts: {done:,}/{total:,}")
            sys.stderr.flush()

    t0 = time.perf_counter()
    result = evaluate_in_context(trained.model, trained.tokenizer, task, ks, args.draws, length_norm=args.length_norm,
                                 attention_examples=args.attention, progress=progress)
    if tty:
        sys.stderr.write("\r\033[K")
    print(result.table())
    if result.attention and result.attention["examples"]:
        a = result.attention
        print(f"query attention per demonstration (k = {a['k']}, first .. last, mean of {a['examples']} prompts): "
              + " ".join(f"{x:.3f}" for x in a["demonstrations"])
              + "; by part: " + ", ".join(f"{kind} {x:.3f}" for kind, x in a["kinds"].items()))
        same, other = a["same_input"]["same"], a["same_input"]["other"]
        if same is not None and other is not None:
            print(f"a demonstration with the query's own input gets {same:.3f} of its attention, "
                  f"another one {other:.3f}")
    if result.look_back is not None:
        print(result.look_back_line())
    print(f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.out:
        result.save(args.out, args.run, trained.step, args.data)
        print(f"results: {args.out}", file=sys.stderr)
    return 0


def _icl_task_from_args(args):
    """An InContextTask from the eval command's data options."""
    from workbench.engine.errors import ConfigError
    from workbench.engine.icl_task import ICLTaskSpec, build_icl_task

    if args.data.startswith("builtin:icl"):
        return build_icl_task(ICLTaskSpec(data=args.data, limit=args.limit, seed=args.seed))
    verbalizer = {}
    for item in filter(None, (p.strip() for p in args.verbalizer.split(","))):
        label, sep, word = item.partition("=")
        if not sep:
            raise ConfigError(f"--verbalizer {args.verbalizer!r}: write LABEL=WORD pairs separated by commas, "
                              f"e.g. 0=negative,1=positive.")
        verbalizer[label.strip()] = word
    choices = tuple(c.strip() for c in args.choices.split(",") if c.strip())
    if not (args.label or choices) or (choices and not args.answer):
        raise ConfigError("eval: give --label COL for a labelled task, or --choices and --answer for multiple choice.")
    spec = ICLTaskSpec(
        data=args.data, demos=args.demos or "", text=args.text, text_pair=args.text_pair, label=args.label,
        choices=choices, answer=args.answer, answer_base=args.answer_base, labels=tuple(verbalizer),
        verbalizer=tuple(verbalizer.items()), description=unescape(args.description, "--description"),
        input=unescape(args.template, "--template"),
        answer_template=unescape(args.answer_template, "--answer-template"),
        separator=unescape(args.separator, "--separator"), limit=args.limit, seed=args.seed)
    return build_icl_task(spec)


def cmd_generate(args) -> int:
    from workbench.engine.device import resolve_device
    from workbench.engine.generate import SamplingSettings, TextStream, generate
    from workbench.engine.loading import load_trained

    settings = SamplingSettings(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                                top_p=args.top_p, seed=args.seed)
    settings.check()  # before loading the model
    _set_threads(args.threads)
    trained = load_trained(args.run, resolve_device(args.device, "--device"), with_heads=False)
    if not args.no_echo:
        sys.stdout.write(unescape(args.prompt, "--prompt") or "")
    stream = TextStream(trained.tokenizer)
    prompt = unescape(args.prompt, "--prompt")
    for tok in generate(trained.model, trained.tokenizer, prompt, settings, attention="none"):
        sys.stdout.write(stream.push(tok.id))
        sys.stdout.flush()
    sys.stdout.write(stream.flush() + "\n")
    return 0


def _set_threads(n: int) -> None:
    if n > 0:
        import torch

        torch.set_num_threads(n)
