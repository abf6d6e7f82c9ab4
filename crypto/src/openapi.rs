//! Helpers for the OpenAPI schemas of the entry JSON model (feature `openapi`).
//!
//! The validated string types serialise as plain strings; these builders describe
//! them as such, so the node's `/v1/openapi.json` documents the entry JSON exactly.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// A string schema with a description.
pub fn string_schema(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .into()
}

/// A string enum schema.
pub fn enum_schema(values: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .into()
}
