"""Torch module factories for the demo models: real architectures, random weights, no downloads.

Each factory returns an `nn.Module` whose forward takes one batch of the input its model file
describes, so the profiler can measure it on CPU or GPU. torch is imported here only; nothing on
the planning path imports this module.
"""

from __future__ import annotations

import torch
from torch import nn


class _Encoder(nn.Module):
    """Token embeddings and a pre-norm transformer encoder; output pooled over the sequence."""

    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, seq: int, out: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.position = nn.Parameter(torch.zeros(seq, hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, batch_first=True,
                                           norm_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(hidden, out) if out else nn.Identity()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.position[: tokens.shape[1]]
        return self.head(self.encoder(x).mean(dim=1))


def text_classifier(vocab: int = 30522, hidden: int = 256, layers: int = 4, heads: int = 4,
                    seq: int = 128, classes: int = 16) -> nn.Module:
    """A BERT-style classifier (intent, toxicity, sentiment, routing, cross-encoder reranking)."""
    return _Encoder(vocab, hidden, layers, heads, seq, classes)


def text_encoder(vocab: int = 30522, hidden: int = 384, layers: int = 6, heads: int = 6,
                 seq: int = 128) -> nn.Module:
    """A sentence-embedding encoder (MiniLM/BERT shape): returns one vector per input."""
    return _Encoder(vocab, hidden, layers, heads, seq, 0)


class _Decoder(nn.Module):
    """A causal transformer language model; forward returns the next-token logits."""

    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, ffn: int, seq: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.position = nn.Parameter(torch.zeros(seq, hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, ffn, batch_first=True,
                                           norm_first=True, dropout=0.0)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        x = self.embed(tokens) + self.position[:length]
        x = self.blocks(x, mask=mask, is_causal=True)
        return self.lm_head(self.norm(x[:, -1]))


def decoder_lm(vocab: int = 32000, hidden: int = 512, layers: int = 8, heads: int = 8,
               ffn: int = 2048, seq: int = 256) -> nn.Module:
    """A GPT/Llama-shaped decoder; the large demo LLMs use this with their real dimensions."""
    return _Decoder(vocab, hidden, layers, heads, ffn, seq)


def tabular_mlp(features: int = 256, hidden: int = 1024, layers: int = 4,
                outputs: int = 1) -> nn.Module:
    """A ranking or scoring MLP over dense features (CTR, churn, anomaly scores)."""
    blocks: list[nn.Module] = []
    width = features
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    blocks.append(nn.Linear(width, outputs))
    return nn.Sequential(*blocks)


def image_classifier(width: int = 64, stages: int = 4, blocks: int = 2,
                     classes: int = 1000, channels: int = 3) -> nn.Module:
    """A ResNet-style CNN (moderation, OCR, layout); `channels: 1` for spectrograms."""
    layers: list[nn.Module] = [nn.Conv2d(channels, width, 7, stride=2, padding=3),
                               nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    current = width
    for stage in range(stages):
        out = width * 2 ** stage
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            layers += [nn.Conv2d(current, out, 3, stride=stride, padding=1),
                       nn.BatchNorm2d(out), nn.ReLU()]
            current = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(current, classes)]
    return nn.Sequential(*layers)


class _CausalBlock(nn.Module):
    """A pre-norm decoder block with grouped-query attention that keeps its keys and values."""

    def __init__(self, hidden: int, heads: int, kv_heads: int, ffn: int):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, hidden // heads
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.query = nn.Linear(hidden, hidden, bias=False)
        self.key_value = nn.Linear(hidden, 2 * kv_heads * self.head_dim, bias=False)
        self.out = nn.Linear(hidden, hidden, bias=False)
        self.mlp = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden))

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        batch, length, _ = x.shape
        h = self.norm1(x)
        q = self.query(h).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.key_value(h).view(batch, length, 2, self.kv_heads,
                                      self.head_dim).permute(2, 0, 3, 1, 4)
        if cache is not None:  # decoding: the new token attends to every earlier one
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        group = self.heads // self.kv_heads
        attended = nn.functional.scaled_dot_product_attention(
            q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1),
            is_causal=cache is None and length > 1)
        x = x + self.out(attended.transpose(1, 2).reshape(batch, length, -1))
        return x + self.mlp(self.norm2(x)), (k, v)


class _CausalLM(nn.Module):
    """A causal language model with a KV cache: `model(tokens)` prefills a batch of prompts,
    `model(next_tokens, cache)` decodes one token per sequence; both return the next-token
    logits and the cache."""

    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, kv_heads: int,
                 ffn: int, max_seq: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(max_seq, hidden)
        self.blocks = nn.ModuleList(_CausalBlock(hidden, heads, kv_heads, ffn)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, tokens: torch.Tensor, cache: list | None = None
                ) -> tuple[torch.Tensor, list]:
        start = 0 if cache is None else cache[0][0].shape[2]
        positions = torch.arange(start, start + tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.position(positions)
        kept = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            kept.append(kv)
        return self.lm_head(self.norm(x[:, -1])), kept


def causal_lm(vocab: int = 512, hidden: int = 64, layers: int = 2, heads: int = 4,
              kv_heads: int = 2, ffn: int = 256, max_seq: int = 256) -> nn.Module:
    """A tiny generating decoder with a KV cache, small enough to measure generation on a CPU
    in seconds; the profiler's decode loop drives it."""
    return _CausalLM(vocab, hidden, layers, heads, kv_heads, ffn, max_seq)
