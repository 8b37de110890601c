//! Tool definitions and choices are checked, the answer's schema follows
//! the choice, answers are read back, and the conversation carries calls
//! and results as the JSON the model writes.

use serde_json::json;

use super::*;

fn tools(value: Value) -> Option<Vec<ToolDefinition>> {
    Some(serde_json::from_value(value).expect("tool definitions"))
}

fn weather() -> Option<Vec<ToolDefinition>> {
    tools(json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }
    }, {
        "type": "function",
        "function": {"name": "get_time"}
    }]))
}

fn message(role: &str, content: Option<&str>) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.map(|c| Content::Text(c.into())),
        tool_calls: None,
        tool_call_id: None,
        name: None,
    }
}

#[test]
fn choices_are_checked() {
    assert!(ToolUse::parse(weather(), Some(&json!("none")))
        .expect("ok")
        .is_none());
    assert!(ToolUse::parse(None, None).expect("ok").is_none());
    let auto = ToolUse::parse(weather(), None).expect("ok").expect("tools");
    assert_eq!(auto.choice, Choice::Auto);
    let named = json!({"type": "function", "function": {"name": "get_time"}});
    let named = ToolUse::parse(weather(), Some(&named))
        .expect("ok")
        .expect("tools");
    assert_eq!(named.callable().count(), 1);
    for (tools_given, choice, fragment) in [
        (weather(), json!("sometimes"), "not one of"),
        (
            weather(),
            json!({"type": "function", "function": {"name": "nope"}}),
            "not among",
        ),
        (
            weather(),
            json!({"function": {"name": "get_time"}}),
            "must be none",
        ),
        (None, json!("required"), "no tools"),
        (
            tools(json!([{"type": "function", "function": {"name": "bad name"}}])),
            json!("auto"),
            "letters",
        ),
        (
            tools(json!([{"type": "retrieval", "function": {"name": "x"}}])),
            json!("auto"),
            "not \"function\"",
        ),
        (
            tools(
                json!([{"type": "function", "function": {"name": "x"}}, {"type": "function", "function": {"name": "x"}}]),
            ),
            json!("auto"),
            "twice",
        ),
        (
            tools(json!([{"type": "function", "function": {"name": "x", "parameters": [1]}}])),
            json!("auto"),
            "schema object",
        ),
    ] {
        let error = ToolUse::parse(tools_given, Some(&choice)).expect_err("refused");
        assert!(
            error.message.contains(fragment),
            "{} lacks {fragment}",
            error.message
        );
    }
}

#[test]
fn the_schema_follows_the_choice() {
    let required = ToolUse::parse(weather(), Some(&json!("required")))
        .expect("ok")
        .expect("tools");
    let schema = required.schema(None);
    assert_eq!(schema["required"], json!(["tool_call"]));
    assert_eq!(
        schema["properties"]["tool_call"]["anyOf"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let auto = ToolUse::parse(weather(), None).expect("ok").expect("tools");
    let schema = auto.schema(Some(json!({"type": "integer"})));
    assert_eq!(
        schema["anyOf"][1]["properties"]["response"],
        json!({"type": "integer"})
    );
    assert_eq!(
        schema["anyOf"][0]["properties"]["tool_call"]["anyOf"][1]["properties"]["arguments"],
        json!({"type": "object"}),
        "a function without parameters takes any object"
    );
}

#[test]
fn answers_are_read_back() {
    let auto = ToolUse::parse(weather(), None).expect("ok").expect("tools");
    match auto.read(r#"{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}"#) {
        Answer::Call(call) => {
            assert_eq!(call.function.name, "get_weather");
            assert_eq!(call.function.arguments, r#"{"city":"Paris"}"#);
            assert!(
                call.id.starts_with("call_") && call.id.len() == 29,
                "{}",
                call.id
            );
        }
        other => panic!("not a call: {other:?}"),
    }
    assert_eq!(
        auto.read(r#"{"response": "Sunny."}"#),
        Answer::Text("Sunny.".into())
    );
    assert_eq!(auto.read(r#"{"response": 7}"#), Answer::Text("7".into()));
    assert_eq!(
        auto.read(r#"{"tool_call": {"na"#),
        Answer::Text(r#"{"tool_call": {"na"#.into())
    );
}

#[test]
fn calls_and_results_travel_as_json() {
    let chatml =
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
    let template =
        ChatTemplate::new(chatml.into(), String::new(), String::new()).expect("compiles");
    let auto = ToolUse::parse(weather(), None).expect("ok").expect("tools");
    let mut assistant = message("assistant", None);
    assistant.tool_calls = Some(vec![ToolCall {
        id: "call_1".into(),
        kind: "function".into(),
        function: FunctionCall {
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        },
    }]);
    let mut result = message("tool", Some("18 C"));
    result.tool_call_id = Some("call_1".into());
    let messages = vec![
        message("developer", Some("Be brief.")),
        message("user", Some("Weather in Paris?")),
        assistant,
        result,
    ];
    let out = conversation(&template, messages, Some(&auto)).expect("conversation");
    assert_eq!(out[0].role, "system");
    assert!(out[0]
        .content
        .starts_with("Be brief.\n\nYou can call functions."));
    assert!(out[0].content.contains(r#""name":"get_weather""#));
    assert_eq!(
        out[2].content,
        r#"{"tool_call":{"name":"get_weather","arguments":{"city":"Paris"}}}"#
    );
    assert_eq!(out[3].role, "tool");
    let response: Value = serde_json::from_str(&out[3].content).expect("json");
    assert_eq!(response["tool_response"]["name"], "get_weather");
    assert_eq!(response["tool_response"]["content"], "18 C");

    let mut orphan = message("tool", Some("x"));
    orphan.tool_call_id = None;
    assert!(conversation(&template, vec![orphan], None).is_err());

    let users_only = "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('no') }}{% endif %}{{ m.content }}{% endfor %}";
    let template =
        ChatTemplate::new(users_only.into(), String::new(), String::new()).expect("compiles");
    let out = conversation(&template, vec![message("user", Some("Hi"))], Some(&auto)).expect("ok");
    assert_eq!(out.len(), 1);
    assert!(
        out[0].content.starts_with("You can call functions.") && out[0].content.ends_with("\n\nHi")
    );
}
