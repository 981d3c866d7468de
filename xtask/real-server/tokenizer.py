#!/usr/bin/env python3
"""Writes a Hugging Face tokenizer directory (tokenizer.json, tokenizer_config.json) that
tokenizes exactly as llama.cpp does with the SentencePiece (BPE) vocabulary in a GGUF file, so
llm-bench and genai-bench can build token-exact prompts for the real server.

SentencePiece BPE merges the adjacent pair whose merged piece has the highest score; a
Hugging Face BPE model merges by rank. So every way of splitting a normal piece into two
pieces of the vocabulary becomes a merge, ranked by the merged piece's score. Text gets the
SentencePiece treatment: a leading space ("add_space_prefix"), spaces as U+2581, unknown
characters as byte tokens, and a BOS token in front (llama.cpp adds one to every prompt).

usage: tokenizer.py VOCAB.gguf OUT_DIR
"""
import json
import os
import sys

from gguf import GGUFReader

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"


def field(reader, name):
    f = reader.fields[name]
    if name == "tokenizer.ggml.tokens":
        return [bytes(f.parts[i]).decode("utf-8", errors="surrogatepass") for i in f.data]
    if len(f.data) == 1 and name.endswith("_id"):
        return int(f.parts[f.data[0]][0])
    return [f.parts[i][0].item() for i in f.data]


def main(vocab_path, out_dir):
    reader = GGUFReader(vocab_path)
    model = bytes(reader.fields["tokenizer.ggml.model"].parts[-1]).decode()
    if model != "llama":
        sys.exit(f"tokenizer.py: {vocab_path} holds a `{model}` vocabulary; only SentencePiece (`llama`) is handled")
    pieces = field(reader, "tokenizer.ggml.tokens")
    scores = field(reader, "tokenizer.ggml.scores")
    types = field(reader, "tokenizer.ggml.token_type")
    bos = field(reader, "tokenizer.ggml.bos_token_id")
    eos = field(reader, "tokenizer.ggml.eos_token_id")
    unk = field(reader, "tokenizer.ggml.unknown_token_id")

    ids = {piece: i for i, piece in enumerate(pieces)}
    merges = []
    for merged, (score, kind) in enumerate(zip(scores, types)):
        if kind != NORMAL:
            continue
        piece = pieces[merged]
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in ids and right in ids:
                merges.append((-score, merged, ids[left], ids[right], left, right))
    merges.sort()

    special = [
        {
            "id": i,
            "content": pieces[i],
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, kind in enumerate(types)
        if kind in (CONTROL, UNKNOWN)
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SPACE},
                {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": pieces[bos], "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": pieces[bos], "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": pieces[bos], "type_id": 1}},
                {"Sequence": {"id": "B", "type_id": 1}},
            ],
            "special_tokens": {pieces[bos]: {"id": pieces[bos], "ids": [bos], "tokens": [pieces[bos]]}},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": pieces[unk],
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": ids,
            "merges": [[m[4], m[5]] for m in merges],
        },
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": pieces[bos],
        "eos_token": pieces[eos],
        "unk_token": pieces[unk],
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as out:
        json.dump(tokenizer, out, ensure_ascii=False)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as out:
        json.dump(config, out, indent=2)
    print(f"tokenizer: {len(pieces)} pieces, {len(merges)} merges -> {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
