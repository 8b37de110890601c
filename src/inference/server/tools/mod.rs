//! Function calling on the chat endpoint, served the way llama.cpp serves
//! models whose chat template has no tool syntax of its own: the functions
//! are described in the system message, the answer is constrained to one
//! JSON object — `{"tool_call": {"name": …, "arguments": {…}}}`, or with
//! `tool_choice: "auto"` also `{"response": …}` — and read back as OpenAI's
//! `tool_calls`. Earlier calls and tool results are written into the
//! conversation as that same JSON, so the model sees its own format.

use std::collections::HashMap;

use rand::Rng;
use serde_json::{json, Value};

use super::error::ApiError;
use super::openai::{
    ChatMessage, Content, FunctionCall, FunctionDefinition, ToolCall, ToolDefinition,
};
use super::structured::valid_name;
use crate::inference::chat_template::{ChatTemplate, Message};

/// OpenAI's limit on functions per request.
const MAX_TOOLS: usize = 128;

/// Which answers `tool_choice` allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    /// A call or a text answer.
    Auto,
    /// A call to any of the functions.
    Required,
    /// A call to this function.
    Named(String),
}

/// The functions a request offers and what it lets the model do with them.
#[derive(Debug, Clone)]
pub struct ToolUse {
    functions: Vec<FunctionDefinition>,
    choice: Choice,
}

/// A finished answer read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Call(ToolCall),
    Text(String),
}

fn invalid(message: String, param: &'static str) -> ApiError {
    ApiError::bad_request(message, Some(param))
}

impl ToolUse {
    /// The request's `tools` and `tool_choice`, checked; `None` when there
    /// are no tools or `tool_choice` is `"none"`.
    pub fn parse(
        tools: Option<Vec<ToolDefinition>>,
        choice: Option<&Value>,
    ) -> Result<Option<Self>, ApiError> {
        let tools = tools.unwrap_or_default();
        if tools.len() > MAX_TOOLS {
            return Err(invalid(
                format!("at most {MAX_TOOLS} tools, got {}", tools.len()),
                "tools",
            ));
        }
        let mut functions: Vec<FunctionDefinition> = Vec::with_capacity(tools.len());
        for (i, tool) in tools.into_iter().enumerate() {
            if tool.kind != "function" {
                return Err(invalid(
                    format!("tools[{i}].type {:?} is not \"function\"", tool.kind),
                    "tools",
                ));
            }
            let name = &tool.function.name;
            if !valid_name(name) {
                return Err(invalid(
                    format!(
                        "tools[{i}].function.name {name:?} must be 1 to 64 letters, digits, \
                         underscores or dashes"
                    ),
                    "tools",
                ));
            }
            if functions.iter().any(|f| &f.name == name) {
                return Err(invalid(
                    format!("tools[{i}].function.name {name:?} is given twice"),
                    "tools",
                ));
            }
            if let Some(parameters) = &tool.function.parameters {
                if !parameters.is_object() {
                    return Err(invalid(
                        format!("tools[{i}].function.parameters must be a JSON schema object"),
                        "tools",
                    ));
                }
            }
            functions.push(tool.function);
        }
        let choice = match choice {
            None => Choice::Auto,
            Some(Value::String(mode)) => match mode.as_str() {
                "none" => return Ok(None),
                "auto" => Choice::Auto,
                "required" => Choice::Required,
                other => {
                    return Err(invalid(
                        format!(
                            "tool_choice {other:?} is not one of none, auto, required or \
                             {{\"type\": \"function\", \"function\": {{\"name\": …}}}}"
                        ),
                        "tool_choice",
                    ))
                }
            },
            Some(named) => {
                let name = named
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .filter(|_| named.get("type").and_then(Value::as_str) == Some("function"))
                    .ok_or_else(|| {
                        invalid(
                            "tool_choice must be none, auto, required or {\"type\": \
                             \"function\", \"function\": {\"name\": …}}"
                                .into(),
                            "tool_choice",
                        )
                    })?;
                if !functions.iter().any(|f| f.name == name) {
                    return Err(invalid(
                        format!("tool_choice names {name:?}, which is not among the tools"),
                        "tool_choice",
                    ));
                }
                Choice::Named(name.to_string())
            }
        };
        if functions.is_empty() {
            return match choice {
                Choice::Auto => Ok(None),
                _ => Err(invalid(
                    "tool_choice asks for a call but no tools are given".into(),
                    "tool_choice",
                )),
            };
        }
        Ok(Some(ToolUse { functions, choice }))
    }

    /// The functions the answer may call.
    fn callable(&self) -> impl Iterator<Item = &FunctionDefinition> {
        self.functions.iter().filter(|f| match &self.choice {
            Choice::Named(name) => &f.name == name,
            Choice::Auto | Choice::Required => true,
        })
    }

    /// The schema of the answer; `response`: the schema of a text answer
    /// (from `response_format`; a string without one).
    pub fn schema(&self, response: Option<Value>) -> Value {
        let calls: Vec<Value> = self
            .callable()
            .map(|f| {
                json!({
                    "type": "object",
                    "properties": {
                        "name": {"const": f.name},
                        "arguments": f.parameters.clone().unwrap_or_else(|| json!({"type": "object"})),
                    },
                    "required": ["name", "arguments"],
                    "additionalProperties": false,
                })
            })
            .collect();
        let call = json!({
            "type": "object",
            "properties": {"tool_call": {"anyOf": calls}},
            "required": ["tool_call"],
            "additionalProperties": false,
        });
        if self.choice != Choice::Auto {
            return call;
        }
        let text = json!({
            "type": "object",
            "properties": {"response": response.unwrap_or_else(|| json!({"type": "string"}))},
            "required": ["response"],
            "additionalProperties": false,
        });
        json!({"anyOf": [call, text]})
    }

    /// What the system message tells the model.
    fn instructions(&self) -> String {
        let mut out = String::from(
            "You can call functions. To call one, answer with only this JSON: \
             {\"tool_call\": {\"name\": \"<function name>\", \"arguments\": {<arguments>}}}",
        );
        match &self.choice {
            Choice::Auto => out.push_str(
                ". To answer without a call, answer with only {\"response\": \"<your answer>\"}.",
            ),
            Choice::Required => out.push_str(". Call one of them now."),
            Choice::Named(name) => out.push_str(&format!(". Call {name} now.")),
        }
        out.push_str("\nFunctions:");
        for function in &self.functions {
            out.push('\n');
            out.push_str(&serde_json::to_string(function).unwrap_or_default());
        }
        out
    }

    /// Reads a finished answer: a call, or the text of a `response` (an
    /// answer cut short is returned as its text).
    pub fn read(&self, text: &str) -> Answer {
        let Ok(Value::Object(mut answer)) = serde_json::from_str::<Value>(text) else {
            return Answer::Text(text.to_string());
        };
        if let Some(Value::Object(call)) = answer.get("tool_call") {
            if let Some(name) = call.get("name").and_then(Value::as_str) {
                let arguments = call.get("arguments").cloned().unwrap_or_else(|| json!({}));
                return Answer::Call(ToolCall {
                    id: call_id(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: name.to_string(),
                        arguments: arguments.to_string(),
                    },
                });
            }
        }
        match answer.remove("response") {
            Some(Value::String(response)) => Answer::Text(response),
            Some(other) => Answer::Text(other.to_string()),
            None => Answer::Text(text.to_string()),
        }
    }
}

/// `call_` and 24 random hex digits, as OpenAI's ids look.
fn call_id() -> String {
    let bytes: [u8; 12] = rand::rng().random();
    format!("call_{}", hex::encode(bytes))
}

fn text_of(content: Option<Content>) -> String {
    match content {
        None => String::new(),
        Some(Content::Text(text)) => text,
        Some(Content::Parts(parts)) => parts
            .into_iter()
            .filter(|p| p.kind == "text")
            .filter_map(|p| p.text)
            .collect::<Vec<_>>()
            .join(""),
    }
}

/// A call as the model is asked to write it.
fn written_call(call: &ToolCall) -> String {
    let arguments = serde_json::from_str::<Value>(&call.function.arguments)
        .unwrap_or_else(|_| Value::String(call.function.arguments.clone()));
    json!({"tool_call": {"name": call.function.name, "arguments": arguments}}).to_string()
}

/// The conversation as the chat template sees it: `developer` as `system`,
/// earlier calls and tool results as JSON in the text (tool results as a
/// user's message where the template has no `tool` role), and with `tools`
/// the instructions in the system message (or the first message where the
/// template has no system role).
pub fn conversation(
    template: &ChatTemplate,
    messages: Vec<ChatMessage>,
    tools: Option<&ToolUse>,
) -> Result<Vec<Message>, ApiError> {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len() + 1);
    for (i, message) in messages.into_iter().enumerate() {
        let role = match message.role.as_str() {
            "developer" => "system".to_string(),
            _ => message.role.clone(),
        };
        let mut content = text_of(message.content);
        for call in message.tool_calls.iter().flatten() {
            names.insert(call.id.clone(), call.function.name.clone());
            if !content.is_empty() {
                content.push('\n');
            }
            content.push_str(&written_call(call));
        }
        if role == "tool" {
            let id = message.tool_call_id.ok_or_else(|| {
                invalid(
                    format!("messages[{i}] has role tool but no tool_call_id"),
                    "messages",
                )
            })?;
            let name = message.name.or_else(|| names.get(&id).cloned());
            content =
                json!({"tool_response": {"tool_call_id": id, "name": name, "content": content}})
                    .to_string();
            out.push(Message {
                role: if template.has_tool_role() {
                    role
                } else {
                    "user".into()
                },
                content,
            });
            continue;
        }
        out.push(Message { role, content });
    }
    if let Some(tools) = tools {
        let instructions = tools.instructions();
        match out.first_mut() {
            Some(first) if first.role == "system" => {
                first.content = format!("{}\n\n{instructions}", first.content);
            }
            Some(first) if !template.has_system_role() => {
                first.content = format!("{instructions}\n\n{}", first.content);
            }
            _ => out.insert(
                0,
                Message {
                    role: "system".into(),
                    content: instructions,
                },
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
