#!/usr/bin/env python3
"""Writes a Llama-architecture GGUF with random weights and the real LLaMA vocabulary.

llama.cpp runs a genuine transformer forward pass over it (RMSNorm, RoPE attention, SwiGLU),
so timings are those of a real server; only the text is nonsense. The vocabulary comes from
a vocab-only GGUF (argument 1); the shape defaults to llama2.c's "stories15M" (24M params).

Random weights would sometimes sample control or byte-fallback tokens, which break UTF-8
(llama.cpp then aborts the stream) or end generation early. So residual dimension 0 is held
constant (set in every embedding, never written by a layer): after the final norm it is
positive, and a large negative head weight on it for those tokens keeps them from being
sampled. Every request then runs to max_tokens.

usage: model.py VOCAB.gguf OUT.gguf
"""
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType

DIM, LAYERS, HEADS, FFN, CONTEXT = 288, 6, 6, 768, 2048
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
# Token types of llama.cpp's vocabulary that must never be sampled.
UNKNOWN, CONTROL, BYTE = 2, 3, 6


def value(field):
    """A GGUF key-value field as a Python value."""
    kind = field.types[0]
    if kind == GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    if kind == GGUFValueType.ARRAY:
        if field.types[1] == GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", errors="surrogatepass") for i in field.data]
        return [field.parts[i][0].item() for i in field.data]
    return field.parts[field.data[0]][0].item()


def main(vocab_path, out_path):
    vocab = {k: value(f) for k, f in GGUFReader(vocab_path).fields.items() if k.startswith("tokenizer.")}
    tokens = vocab["tokenizer.ggml.tokens"]
    types = vocab["tokenizer.ggml.token_type"]
    n_vocab = len(tokens)
    head_dim = DIM // HEADS

    out = GGUFWriter(out_path, "llama")
    out.add_name("tiny-random-llama")
    out.add_context_length(CONTEXT)
    out.add_embedding_length(DIM)
    out.add_block_count(LAYERS)
    out.add_feed_forward_length(FFN)
    out.add_head_count(HEADS)
    out.add_head_count_kv(HEADS)
    out.add_rope_dimension_count(head_dim)
    out.add_rope_freq_base(10000.0)
    out.add_layer_norm_rms_eps(1e-5)
    out.add_vocab_size(n_vocab)
    out.add_file_type(LlamaFileType.MOSTLY_F16)
    out.add_tokenizer_model(vocab["tokenizer.ggml.model"])
    if "tokenizer.ggml.pre" in vocab:
        out.add_tokenizer_pre(vocab["tokenizer.ggml.pre"])
    out.add_token_list(tokens)
    out.add_token_scores(vocab["tokenizer.ggml.scores"])
    out.add_token_types(types)
    out.add_bos_token_id(vocab["tokenizer.ggml.bos_token_id"])
    out.add_eos_token_id(vocab["tokenizer.ggml.eos_token_id"])
    out.add_unk_token_id(vocab["tokenizer.ggml.unknown_token_id"])
    out.add_add_bos_token(True)
    out.add_add_eos_token(False)
    out.add_chat_template(TEMPLATE)

    rng = np.random.default_rng(0)

    def weights(rows, cols, std=0.02):
        # numpy (rows, cols) is ggml's ne = [cols, rows]
        return (rng.standard_normal((rows, cols), dtype=np.float32) * std).astype(np.float16)

    def norm(n):
        return np.ones(n, dtype=np.float32)

    embedding = weights(n_vocab, DIM, 1.0)
    embedding[:, 0] = 4.0
    out.add_tensor("token_embd.weight", embedding)
    for layer in range(LAYERS):
        p = f"blk.{layer}."
        out.add_tensor(p + "attn_norm.weight", norm(DIM))
        out.add_tensor(p + "attn_q.weight", weights(DIM, DIM))
        out.add_tensor(p + "attn_k.weight", weights(DIM, DIM))
        out.add_tensor(p + "attn_v.weight", weights(DIM, DIM))
        attn_out = weights(DIM, DIM)
        attn_out[0, :] = 0
        out.add_tensor(p + "attn_output.weight", attn_out)
        out.add_tensor(p + "ffn_norm.weight", norm(DIM))
        out.add_tensor(p + "ffn_gate.weight", weights(FFN, DIM))
        out.add_tensor(p + "ffn_up.weight", weights(FFN, DIM))
        down = weights(DIM, FFN)
        down[0, :] = 0
        out.add_tensor(p + "ffn_down.weight", down)
    out.add_tensor("output_norm.weight", norm(DIM))
    head = weights(n_vocab, DIM, 0.2)
    head[:, 0] = 0
    never = [i for i, t in enumerate(types) if t in (UNKNOWN, CONTROL, BYTE)]
    head[never, 0] = -20.0
    out.add_tensor("output.weight", head)
    out.write_header_to_file()
    out.write_kv_data_to_file()
    out.write_tensors_to_file()
    out.close()
    print(f"wrote {out_path}: vocabulary {n_vocab}, {LAYERS} layers of {DIM}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
