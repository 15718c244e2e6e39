"""The SentencePiece half of gen-tokenizer-fixtures.py: token ids for a GGUF
`llama` (SentencePiece) vocabulary, made by the `sentencepiece` package.

The GGUF's vocabulary is turned back into a SentencePiece model (BPE, byte
fallback, no normalisation, whitespace escaped to U+2581, no dummy prefix
unless the file asks for one) and `sentencepiece` itself encodes the texts.
Two details of the conversion:
  * llama.cpp's converter wrote user-defined pieces with U+2581 turned into
    spaces; they are turned back, since SentencePiece matches them after
    escaping whitespace.
  * llama.cpp matches control tokens written in text as single ids (wgqa's
    `encode` does too); SentencePiece never does, so control pieces are
    declared user-defined here, which makes SentencePiece match them whole.
Where transformers is installed, every case is cross-checked against its
GGUF tokenizer conversion run on the Python `tokenizers` package (for Gemma
3 a BPE built from the scores); a disagreement stops the script.
Chat cases render Gemma 3's Jinja template (below) with jinja2: the file
carries no `tokenizer.chat_template` of its own.
"""

import os
import sys

import jinja2
import sentencepiece
from sentencepiece import sentencepiece_model_pb2 as pb

# The texts of the BPE fixture plus cases that SentencePiece vocabularies
# treat specially: runs of spaces, newlines and tabs (user-defined pieces),
# characters outside the vocabulary (byte fallback), literal byte-token and
# HTML-tag spellings, and Gemma's own control tokens.
EXTRA_TEXTS = [
    "two  spaces, three   spaces,    four",
    " leading space and trailing space ",
    "a\n\n\nb\tc\t\td",
    "\u2581already escaped\u2581 space",
    "troll \U0001f9cc, rune \u16a0, math \U0001d518, cjk-b \U0002070e, \ua66e!",
    "\r\n carriage \r return",
    "<0x41> is not a byte token",
    "<table><tr><td>cell</td></tr></table>",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<bos><eos><pad><mask>",
    "<start_of_turn<end_of_turn>>",
    "x" * 300,
    "The Industrial Revolution, which began in Great Britain in the late eighteenth century, "
    "transformed economies that had been based on agriculture and handicrafts into economies "
    "based on large-scale industry, mechanized manufacturing, and the factory system.",
]

# Gemma 3's chat template as published with its instruction-tuned models
# (tokenizer_config.json), text parts only.
GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\\n'}}
{%- endif -%}
"""

GGUF_CONTROL, GGUF_USER_DEFINED = 3, 4


def processor(meta):
    """A SentencePiece processor holding the GGUF's vocabulary."""
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.vocab_size = len(meta["tokenizer.ggml.tokens"])
    for key, field in [("unknown", "unk_id"), ("bos", "bos_id"), ("eos", "eos_id"), ("padding", "pad_id")]:
        setattr(m.trainer_spec, field, meta.get(f"tokenizer.ggml.{key}_token_id", -1))
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    unk = meta.get("tokenizer.ggml.unknown_token_id")
    pieces = zip(meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.scores"], meta["tokenizer.ggml.token_type"])
    for i, (text, score, kind) in enumerate(pieces):
        p = m.pieces.add()
        p.score = score
        if kind in (GGUF_CONTROL, GGUF_USER_DEFINED) and i != unk:
            p.piece = text.replace(" ", "\u2581")
            p.type = pb.ModelProto.SentencePiece.USER_DEFINED
        else:
            p.piece = text
            p.type = kind  # GGUF's token types number SentencePiece's piece types
    return sentencepiece.SentencePieceProcessor(model_proto=m.SerializeToString())


def transformers_encoder(meta):
    """transformers' GGUF tokenizer conversion, or None without transformers."""
    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer
    except ImportError:
        return None
    renames = GGUF_TOKENIZER_MAPPING["tokenizer"]
    tokenizer_dict = {new: meta[f"tokenizer.{key}"] for key, new in renames.items() if f"tokenizer.{key}" in meta}
    backend, _ = convert_gguf_tokenizer(meta["general.architecture"], tokenizer_dict)
    return lambda text: backend.encode(text, add_special_tokens=False).ids


def make(model_path, meta, bpe_texts, chats):
    sp = processor(meta)
    texts = bpe_texts + EXTRA_TEXTS
    cases = [{"text": t, "ids": sp.encode(t)} for t in texts]
    other = transformers_encoder(meta)
    for case in cases if other else []:
        if other(case["text"]) != case["ids"]:
            sys.exit(f"references disagree on {case['text']!r}:\n sentencepiece {case['ids']}\n hf {other(case['text'])}")
    template = jinja2.Environment().from_string(GEMMA3_TEMPLATE)
    bos = meta["tokenizer.ggml.tokens"][meta["tokenizer.ggml.bos_token_id"]]
    chat_cases = []
    for messages, add_generation_prompt in chats:
        text = template.render(messages=messages, add_generation_prompt=add_generation_prompt, bos_token=bos)
        assert text.startswith(bos)
        # wgqa renders without BOS and `encode` adds it, so the text is kept
        # without it and the ids with it.
        chat_cases.append(
            {
                "messages": messages,
                "add_generation_prompt": add_generation_prompt,
                "text": text[len(bos) :],
                "ids": sp.encode(text),
            }
        )
    name = os.path.basename(model_path)
    return "gemma3.json", {
        "model": name,
        "source": "sentencepiece (Python package) on a SentencePiece model built from the GGUF vocabulary"
        + (", cross-checked with transformers' GGUF tokenizer conversion" if other else "")
        + "; chat text rendered from Gemma 3's chat template with jinja2",
        "vocab_size": len(meta["tokenizer.ggml.tokens"]),
        "add_bos": bool(meta.get("tokenizer.ggml.add_bos_token", True)),
        "cases": cases,
        "chats": chat_cases,
    }
