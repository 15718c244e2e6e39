#!/usr/bin/env python3
"""Write a tokenizer fixture, text -> token ids made by tokenizers that share
no code with wgqa, for the tokenizer tests to match:
  * a `gpt2` (byte-level BPE) model such as SmolLM2 (the default) ->
    tests/fixtures/tokenizer/smollm2.json, for tests/tokenizer.rs;
  * a `llama` (SentencePiece) model such as Gemma 3 ->
    tests/fixtures/tokenizer/gemma3.json, for tests/tokenizer_spm.rs, made by
    the `sentencepiece` package (see scripts/spm_fixture.py).

For BPE, the
references, both reading the GGUF file itself:
  * llama.cpp (through llama-cpp-python, vocabulary only): the C++ tokenizer
    GGUF files are written for. Its ids are the fixture.
  * transformers' GGUF tokenizer conversion (vocab, merges, special tokens,
    split pattern), run on the Python `tokenizers` package. Every case is
    cross-checked against it; a disagreement stops the script. transformers
    has no entry for the `smollm` pre-tokenizer (it would keep digit runs
    whole), so for `smollm` the script sets the pre-tokenizer of SmolLM2's
    own tokenizer.json: Digits(individual) then ByteLevel.
The llama-bpe and qwen2 cases reuse SmolLM2's vocabulary under those split
rules (a GGUF copy with only `tokenizer.ggml.pre` changed), so the other
supported pre-tokenizers are checked without downloading other models.
Chat cases render the file's own Jinja template with jinja2.

Run in a throwaway venv, not the system Python (no torch needed):
  python3 -m venv /tmp/tokvenv
  /tmp/tokvenv/bin/pip install gguf transformers tokenizers jinja2 llama-cpp-python  # BPE
  /tmp/tokvenv/bin/pip install gguf sentencepiece protobuf jinja2 transformers       # SentencePiece
  /tmp/tokvenv/bin/python scripts/gen-tokenizer-fixtures.py [MODEL.gguf]
"""

import json
import os
import sys
import tempfile

import gguf
import jinja2

try:
    from llama_cpp import Llama
except ImportError:  # fallback: transformers alone, which is not independent of the Rust `tokenizers` crate
    Llama = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

TEXTS = [
    # ASCII words and sentences
    "Hello world",
    "Hello, world!",
    "The capital of France is",
    "The quick brown fox jumps over the lazy dog.",
    "Don't you're we've I'm they'll I'd it's",
    "DON'T SHOUT, IT'S LOUD",
    # whitespace runs
    " leading space",
    "   three leading",
    "trailing space ",
    "trailing spaces   ",
    "multiple     spaces     here",
    "tabs\tand\nnewlines\n\n",
    "   \n\n   \t ",
    "line1\r\nline2\r\n",
    "a \n b",
    "def f(x):\n    return x ** 2\n",
    # digits
    "12345",
    "3.14159",
    "a1b2c3",
    "The year 2024 had 366 days.",
    "1,000,000 and 0.5%",
    "phone: +1 (555) 123-4567",
    "\u00bd \u00b2 \u0663\u0664 \u096b x\u2163",
    # punctuation and symbols
    "!!! ??? ... ---",
    "(a+b)*c = d/e; f[g] {h}",
    "@user #tag $100 & <html></html>",
    "\u201cquoted\u201d \u2014 dash \u2026",
    # accents and other scripts
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 fa\u00e7ade",
    "\u00dcn\u00efc\u00f6d\u00e9 \u00c0\u00c9\u00ce\u00d5\u00dc",
    "combining e\u0301 and n\u0303",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4e2d\u6587\u5206\u8bcd\u6d4b\u8bd5\uff0c\u4f60\u597d\uff01",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48",
    "a\u00a0b\u3000c\u200bd",
    # emoji
    "\U0001f642\U0001f680\U0001f44d\U0001f3fd",
    "family: \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "emoji\U0001f642inline",
    "mixed: English, \u65e5\u672c, \U0001f642, 123",
    # control characters and edges
    "",
    " ",
    "\u0000nul\u0007bell\u007f",
    # special tokens written in text
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|im_end|>more",
    "<|im_start|><|im_end|>",
    "<|im_start <|im_end|",
    "<repo_name>wgqa<file_sep>src/lib.rs",
]

CHATS = [
    ([{"role": "user", "content": "What is the capital of France?"}], True),
    ([{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Capital of Japan?"}], True),
    (
        [
            {"role": "user", "content": "Hi! \U0001f642"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Count: 1 2 3"},
        ],
        False,
    ),
]

# Which split rules get which texts: every text under the model's own
# pre-tokenizer, the ones that tell split rules apart under the others.
OTHER_PRE_TEXTS = [t for t in TEXTS if any(c.isdigit() or c.isspace() or c in "'!." for c in t)]


def metadata(path):
    reader = gguf.GGUFReader(path)
    return reader, {name: field.contents() for name, field in reader.fields.items()}


def copy_with_pre(reader, path, pre):
    """The GGUF's metadata (no tensors) with `tokenizer.ggml.pre` replaced."""
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(path, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = pre if name == "tokenizer.ggml.pre" else field.contents()
        sub = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, value, field.types[0], sub)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def transformers_tokenizer(meta):
    """transformers' conversion, fed from the gguf reader (its own reader
    imports torch; the conversion itself does not)."""
    from tokenizers import pre_tokenizers
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer

    renames = GGUF_TOKENIZER_MAPPING["tokenizer"]
    tokenizer_dict = {new: meta[f"tokenizer.{key}"] for key, new in renames.items() if f"tokenizer.{key}" in meta}
    backend, _ = convert_gguf_tokenizer(meta["general.architecture"], tokenizer_dict)
    if meta.get("tokenizer.ggml.pre") == "smollm":
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        )
    return backend


def load(path, meta):
    """The reference encoder: llama.cpp, else transformers' conversion."""
    if Llama is None:
        hf = transformers_tokenizer(meta)
        return lambda text: hf.encode(text, add_special_tokens=False).ids
    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    return lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def cases_for(path, meta, texts):
    encode = load(path, meta)
    hf = transformers_tokenizer(meta)
    out = []
    for text in texts:
        ids = encode(text)
        other = hf.encode(text, add_special_tokens=False).ids
        if ids != other:
            sys.exit(f"references disagree on {text!r} (pre {meta['tokenizer.ggml.pre']}):\n llama.cpp {ids}\n hf {other}")
        out.append({"pre": meta["tokenizer.ggml.pre"], "text": text, "ids": ids})
    return out


def bpe_fixture(reader, meta):
    cases = cases_for(MODEL, meta, TEXTS)
    with tempfile.TemporaryDirectory() as tmp:
        for pre in ["llama-bpe", "qwen2", "gpt2"]:
            path = os.path.join(tmp, f"{pre}.gguf")
            copy_with_pre(reader, path, pre)
            _, copy_meta = metadata(path)
            cases += cases_for(path, copy_meta, OTHER_PRE_TEXTS)

    template = jinja2.Environment().from_string(meta["tokenizer.chat_template"])
    encode = load(MODEL, meta)
    chats = []
    for messages, add_generation_prompt in CHATS:
        text = template.render(messages=messages, add_generation_prompt=add_generation_prompt)
        chats.append(
            {
                "messages": messages,
                "add_generation_prompt": add_generation_prompt,
                "text": text,
                "ids": encode(text),
            }
        )

    return "smollm2.json", {
        "model": os.path.basename(MODEL),
        "source": ("llama.cpp (llama-cpp-python, vocab_only), cross-checked with" if Llama else "FALLBACK, no llama.cpp:")
        + " transformers' GGUF tokenizer conversion; chat text rendered from tokenizer.chat_template with jinja2",
        "vocab_size": len(meta["tokenizer.ggml.tokens"]),
        "cases": cases,
        "chats": chats,
    }


def main():
    reader, meta = metadata(MODEL)
    model = meta["tokenizer.ggml.model"]
    if model == "gpt2":
        name, fixture = bpe_fixture(reader, meta)
    elif model == "llama":
        import spm_fixture  # scripts/spm_fixture.py

        name, fixture = spm_fixture.make(MODEL, meta, TEXTS, CHATS)
    else:
        sys.exit(f"no reference for tokenizer model {model!r}")
    out = os.path.join(FIXTURES, name)
    os.makedirs(FIXTURES, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"wrote {len(fixture['cases'])} cases and {len(fixture['chats'])} chats to {out}")


if __name__ == "__main__":
    main()
