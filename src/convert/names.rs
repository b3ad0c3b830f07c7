//! Tensor names: Hugging Face's (safetensors) beside llama.cpp's (GGUF), per architecture.
//!
//! One table per architecture: import writes llama.cpp's names (`convert`). `{}` stands for
//! the layer number; the suffix (`.weight`, `.bias`) is carried over unchanged.

/// `(gguf stem, hugging face stem)` pairs of a BERT model (llama.cpp's `tensor_mapping.py`).
pub const BERT: &[(&str, &str)] = &[
    ("token_embd", "embeddings.word_embeddings"),
    ("token_types", "embeddings.token_type_embeddings"),
    ("position_embd", "embeddings.position_embeddings"),
    ("token_embd_norm", "embeddings.LayerNorm"),
    ("blk.{}.attn_q", "encoder.layer.{}.attention.self.query"),
    ("blk.{}.attn_k", "encoder.layer.{}.attention.self.key"),
    ("blk.{}.attn_v", "encoder.layer.{}.attention.self.value"),
    (
        "blk.{}.attn_output",
        "encoder.layer.{}.attention.output.dense",
    ),
    (
        "blk.{}.attn_output_norm",
        "encoder.layer.{}.attention.output.LayerNorm",
    ),
    ("blk.{}.ffn_up", "encoder.layer.{}.intermediate.dense"),
    ("blk.{}.ffn_down", "encoder.layer.{}.output.dense"),
    (
        "blk.{}.layer_output_norm",
        "encoder.layer.{}.output.LayerNorm",
    ),
];

/// The same for nomic-bert (nomic-embed-text): fused QKV, SwiGLU, rotary positions.
pub const NOMIC_BERT: &[(&str, &str)] = &[
    ("token_embd", "embeddings.word_embeddings"),
    ("token_types", "embeddings.token_type_embeddings"),
    ("token_embd_norm", "emb_ln"),
    ("blk.{}.attn_qkv", "encoder.layers.{}.attn.Wqkv"),
    ("blk.{}.attn_output", "encoder.layers.{}.attn.out_proj"),
    ("blk.{}.attn_output_norm", "encoder.layers.{}.norm1"),
    ("blk.{}.ffn_up", "encoder.layers.{}.mlp.fc11"),
    ("blk.{}.ffn_gate", "encoder.layers.{}.mlp.fc12"),
    ("blk.{}.ffn_down", "encoder.layers.{}.mlp.fc2"),
    ("blk.{}.layer_output_norm", "encoder.layers.{}.norm2"),
];

/// The same for a llama-architecture chat model.
pub const LLAMA: &[(&str, &str)] = &[
    ("token_embd", "model.embed_tokens"),
    ("output_norm", "model.norm"),
    ("output", "lm_head"),
    ("blk.{}.attn_norm", "model.layers.{}.input_layernorm"),
    ("blk.{}.attn_q", "model.layers.{}.self_attn.q_proj"),
    ("blk.{}.attn_k", "model.layers.{}.self_attn.k_proj"),
    ("blk.{}.attn_v", "model.layers.{}.self_attn.v_proj"),
    ("blk.{}.attn_output", "model.layers.{}.self_attn.o_proj"),
    (
        "blk.{}.ffn_norm",
        "model.layers.{}.post_attention_layernorm",
    ),
    ("blk.{}.ffn_gate", "model.layers.{}.mlp.gate_proj"),
    ("blk.{}.ffn_up", "model.layers.{}.mlp.up_proj"),
    ("blk.{}.ffn_down", "model.layers.{}.mlp.down_proj"),
];

/// The table for a GGUF architecture name.
pub fn table(architecture: &str) -> Option<&'static [(&'static str, &'static str)]> {
    match architecture {
        "bert" => Some(BERT),
        "nomic-bert" => Some(NOMIC_BERT),
        "llama" => Some(LLAMA),
        _ => None,
    }
}

/// The GGUF name of a Hugging Face tensor.
pub fn to_gguf(table: &[(&str, &str)], hf_name: &str) -> Option<String> {
    translate(table.iter().map(|(gguf, hf)| (*hf, *gguf)), hf_name)
}

fn translate<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>, name: &str) -> Option<String> {
    let (stem, suffix) = name.rsplit_once('.')?;
    for (from, to) in pairs {
        if let Some(layer) = match_stem(from, stem) {
            let stem = match layer {
                Some(n) => to.replace("{}", &n.to_string()),
                None => to.to_string(),
            };
            return Some(format!("{stem}.{suffix}"));
        }
    }
    None
}

/// Whether `stem` fits `pattern`; the layer number when the pattern has one.
fn match_stem(pattern: &str, stem: &str) -> Option<Option<usize>> {
    match pattern.split_once("{}") {
        None => (pattern == stem).then_some(None),
        Some((head, tail)) => {
            let number = stem.strip_prefix(head)?.strip_suffix(tail)?;
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            number.parse().ok().map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_names_translate() {
        assert_eq!(
            to_gguf(BERT, "encoder.layer.5.attention.output.LayerNorm.bias").as_deref(),
            Some("blk.5.attn_output_norm.bias")
        );
        assert_eq!(
            to_gguf(BERT, "encoder.layer.11.output.dense.weight").as_deref(),
            Some("blk.11.ffn_down.weight")
        );
        assert_eq!(
            to_gguf(BERT, "embeddings.LayerNorm.weight").as_deref(),
            Some("token_embd_norm.weight")
        );
    }

    #[test]
    fn names_outside_the_table_have_no_translation() {
        assert_eq!(to_gguf(BERT, "pooler.dense.weight"), None);
        assert_eq!(to_gguf(LLAMA, "model.layers.x.mlp.up_proj.weight"), None);
        assert_eq!(
            to_gguf(LLAMA, "model.layers..self_attn.q_proj.weight"),
            None
        );
        assert_eq!(to_gguf(LLAMA, "nodot"), None);
    }

    #[test]
    fn llama_and_nomic_names_follow_llama_cpp() {
        assert_eq!(
            to_gguf(LLAMA, "model.layers.29.self_attn.k_proj.weight").as_deref(),
            Some("blk.29.attn_k.weight")
        );
        assert_eq!(
            to_gguf(LLAMA, "lm_head.weight").as_deref(),
            Some("output.weight")
        );
        assert_eq!(
            to_gguf(NOMIC_BERT, "encoder.layers.0.mlp.fc12.weight").as_deref(),
            Some("blk.0.ffn_gate.weight")
        );
    }
}
