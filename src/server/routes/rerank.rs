//! Reranking: `POST /api/rerank` (rollama's native shape) and `POST /v1/rerank` (the
//! Jina/Cohere shape that llama-server, Open WebUI's external reranker and RAG frameworks
//! speak, and TEI's `texts` form), on a model with rank pooling (a cross-encoder's
//! classification head, `crate::engine::embedding`).
//!
//! Each document is scored with the query as one sequence; all of a request's pairs go
//! through the model together, in multi-sequence batches. Scores are the head's raw output,
//! as llama-server returns them, sorted best first and cut to `top_n`.

use crate::engine::embedding::{pooling_of, EmbedError, Pooling};
use crate::server::error::{parse_json, ApiError};
use crate::server::inference::{find_model, keep_alive, Target};
use crate::server::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Instant;

/// Most documents one request may rank (Cohere's limit).
pub const MAX_DOCUMENTS: usize = 1000;

#[derive(Deserialize, Default)]
struct RerankBody {
    #[serde(default)]
    model: String,
    #[serde(default)]
    query: Option<Value>,
    #[serde(default)]
    documents: Option<Value>,
    /// TEI's name for the documents.
    #[serde(default)]
    texts: Option<Value>,
    #[serde(default)]
    top_n: Option<Value>,
    #[serde(default)]
    return_documents: Option<bool>,
    /// TEI's name for `return_documents`.
    #[serde(default)]
    return_text: Option<bool>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    keep_alive: Option<Value>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

/// The documents of a request: strings, or objects with a `text` (Jina's and Cohere's
/// structured documents).
fn documents_of(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let invalid =
        || ApiError::bad_request("documents must be an array of strings or of {\"text\": …}");
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Object(fields) => fields
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(invalid),
                _ => Err(invalid()),
            })
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// `top_n`: how many results to return; absent, null or 0 mean all (as Cohere and Jina).
fn top_n_of(value: Option<&Value>, documents: usize) -> Result<usize, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(documents),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(0) => Ok(documents),
            Some(n) if n > 0 => Ok((n as usize).min(documents)),
            _ => Err(ApiError::bad_request("top_n must be a positive integer")),
        },
        Some(_) => Err(ApiError::bad_request("top_n must be a positive integer")),
    }
}

/// Ollama-style 400 for a model that cannot rank, saying what it is instead.
fn require_rank(target: &Target) -> Result<(), ApiError> {
    match pooling_of(&target.gguf) {
        Some(Pooling::Rank) => Ok(()),
        Some(pooling) => Err(ApiError::bad_request(format!(
            "\"{}\" does not support reranking: it is an embedding model (pooling: {}); a \
             reranker has a classification head (pooling: rank)",
            target.requested,
            pooling.name()
        ))),
        None => Err(ApiError::bad_request(format!(
            "\"{}\" does not support reranking: it is a text model; a reranker has a \
             classification head (pooling: rank)",
            target.requested
        ))),
    }
}

/// What one rerank request produced.
struct Ranked {
    /// (document index, score), best first, cut to `top_n`.
    results: Vec<(usize, f32)>,
    documents: Vec<String>,
    prompt_tokens: usize,
    model: String,
    return_documents: bool,
}

/// Parses, checks, loads and scores: the part both shapes share. No documents only loads the
/// model (as `/api/embed` with no input does).
async fn rank(state: &web::Data<AppState>, body: &[u8]) -> Result<Ranked, ApiError> {
    let request: RerankBody = parse_json(body)?;
    let query = match &request.query {
        Some(Value::String(query)) => query.clone(),
        None | Some(Value::Null) => return Err(ApiError::bad_request("query is required")),
        Some(_) => return Err(ApiError::bad_request("query must be a string")),
    };
    let documents = documents_of(request.documents.as_ref().or(request.texts.as_ref()))?;
    if documents.len() > MAX_DOCUMENTS {
        return Err(ApiError::bad_request(format!(
            "too many documents: {} (at most {MAX_DOCUMENTS} per request)",
            documents.len()
        )));
    }
    let top_n = top_n_of(request.top_n.as_ref(), documents.len())?;
    let keep_alive = keep_alive(request.keep_alive.as_ref())?;
    let target = find_model(
        state,
        &request.model,
        ApiError::bad_request("model is required"),
    )
    .await?;
    require_rank(&target)?;
    let options = target.options(request.options.as_ref())?;
    let load = target
        .load_request(&state.store, &options, keep_alive)
        .ok_or_else(|| ApiError::bad_request("model has no weights"))?;
    let (lease, _) = state.scheduler.acquire(load).await?;
    let embedder = lease.runner.embedder()?;
    let truncate = request.truncate.unwrap_or(true);
    let limit = options.num_ctx;
    let scored = if documents.is_empty() {
        None
    } else {
        let documents = documents.clone();
        let ranking = web::block(move || embedder.rank(&query, &documents, limit, truncate))
            .await
            .map_err(|_| ApiError::internal("the reranking model crashed"))?
            .map_err(|e| match e {
                EmbedError::Failed(message) => ApiError::internal(message),
                refused => ApiError::bad_request(refused.to_string()),
            })?;
        Some(ranking)
    };
    drop(lease);
    crate::memory::note_activity();
    let (scores, prompt_tokens) = scored.map_or((Vec::new(), 0), |r| (r.scores, r.prompt_tokens));
    if scores.iter().any(|s| !s.is_finite()) {
        return Err(ApiError::internal(
            "the model returned a score that is not a number",
        ));
    }
    let mut results: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
    // Best first; equal scores keep the documents' order.
    results.sort_by(|a, b| b.1.total_cmp(&a.1));
    results.truncate(top_n);
    Ok(Ranked {
        results,
        documents,
        prompt_tokens,
        model: request.model,
        return_documents: request
            .return_documents
            .or(request.return_text)
            .unwrap_or(false),
    })
}

/// `POST /api/rerank`: `{model, results: [{index, relevance_score, document?}]}`.
pub async fn rerank(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let ranked = rank(&state, &body).await?;
    let results: Vec<Value> = ranked
        .results
        .iter()
        .map(|&(index, score)| {
            let mut result = json!({"index": index, "relevance_score": score});
            if ranked.return_documents {
                result["document"] = json!(ranked.documents[index]);
            }
            result
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "model": ranked.model,
        "results": results,
        "total_duration": started.elapsed().as_nanos() as u64,
        "prompt_eval_count": ranked.prompt_tokens,
    })))
}

/// `POST /v1/rerank`: Jina's and Cohere's shape (llama-server's), or TEI's flat array when the
/// request names its documents `texts`; errors in OpenAI's shape.
pub async fn rerank_v1(state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let tei = serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.get("texts").is_some());
    let ranked = match rank(&state, &body).await {
        Ok(ranked) => ranked,
        Err(e) => {
            let status = actix_web::ResponseError::status_code(&e);
            return super::openai::error(status, e.message());
        }
    };
    let (score_key, text_key) = if tei {
        ("score", "text")
    } else {
        ("relevance_score", "document")
    };
    let results: Vec<Value> = ranked
        .results
        .iter()
        .map(|&(index, score)| {
            let mut result = json!({"index": index});
            result[score_key] = json!(score);
            if ranked.return_documents {
                let text = &ranked.documents[index];
                result[text_key] = if tei {
                    json!(text)
                } else {
                    json!({ "text": text })
                };
            }
            result
        })
        .collect();
    if tei {
        return HttpResponse::Ok().json(results);
    }
    HttpResponse::build(StatusCode::OK).json(json!({
        "model": ranked.model,
        "object": "list",
        "usage": {"prompt_tokens": ranked.prompt_tokens, "total_tokens": ranked.prompt_tokens},
        "results": results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_strings_or_objects_with_text() {
        assert!(documents_of(None).unwrap().is_empty());
        assert_eq!(
            documents_of(Some(&json!(["a", {"text": "b"}]))).unwrap(),
            ["a", "b"]
        );
        for bad in [
            json!("a"),
            json!([1]),
            json!([{"title": "x"}]),
            json!({"a": 1}),
        ] {
            assert!(documents_of(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn top_n_defaults_to_all_and_is_capped() {
        assert_eq!(top_n_of(None, 5).unwrap(), 5);
        assert_eq!(top_n_of(Some(&json!(0)), 5).unwrap(), 5);
        assert_eq!(top_n_of(Some(&json!(2)), 5).unwrap(), 2);
        assert_eq!(top_n_of(Some(&json!(9)), 5).unwrap(), 5);
        for bad in [json!(-1), json!(1.5), json!("2")] {
            assert!(top_n_of(Some(&bad), 5).is_err(), "{bad}");
        }
    }
}
