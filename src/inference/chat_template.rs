//! Chat templates: the model's Jinja template (from `tokenizer_config.json`
//! or GGUF metadata) rendered with minijinja and Python-compatible string
//! methods, turning OpenAI-style messages into one prompt.

use minijinja::{context, Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;

/// Why a chat template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("compiling the chat template")]
    Compile(#[source] JinjaError),
    #[error("rendering the chat template")]
    Render(#[source] JinjaError),
}

/// One chat message as the template sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A compiled chat template with the special tokens it may reference, and
/// which of the optional roles it renders (probed once, when compiled).
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    system_role: bool,
    tool_role: bool,
}

const NAME: &str = "chat";

fn raise_exception(message: String) -> Result<String, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

impl ChatTemplate {
    pub fn new(
        source: String,
        bos_token: String,
        eos_token: String,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned(NAME, source)
            .map_err(TemplateError::Compile)?;
        let mut template = ChatTemplate {
            env,
            bos_token,
            eos_token,
            system_role: false,
            tool_role: false,
        };
        template.system_role = template.renders_role("system");
        template.tool_role = template.renders_role("tool");
        Ok(template)
    }

    /// True when the template renders a system message (some raise or drop it).
    pub fn has_system_role(&self) -> bool {
        self.system_role
    }

    /// True when the template renders a `tool` message.
    pub fn has_tool_role(&self) -> bool {
        self.tool_role
    }

    /// The prompt for `messages`, ending with the assistant's turn opener.
    pub fn render(&self, messages: &[Message]) -> Result<String, TemplateError> {
        let template = self.env.get_template(NAME).map_err(TemplateError::Render)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(TemplateError::Render)
    }

    /// True when the template renders a message of `role` with its text
    /// (templates without a system or tool role raise or drop it). A system
    /// message is tried first in the conversation, any other role after a
    /// user's message.
    fn renders_role(&self, role: &str) -> bool {
        const PROBE: &str = "garage-role-probe";
        let message = |role: &str, content: &str| Message {
            role: role.into(),
            content: content.into(),
        };
        let probe = message(role, PROBE);
        let user = message("user", "hello");
        let messages = if role == "system" {
            [probe, user]
        } else {
            [user, probe]
        };
        self.render(&messages)
            .is_ok_and(|prompt| prompt.contains(PROBE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_chatml_with_python_methods() {
        let source = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content.strip() }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let t = ChatTemplate::new(source.into(), String::new(), String::new()).expect("compiles");
        let out = t
            .render(&[Message {
                role: "user".into(),
                content: " hi ".into(),
            }])
            .expect("renders");
        assert_eq!(
            out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn roles_the_template_renders() {
        let chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
        let t = ChatTemplate::new(chatml.into(), String::new(), String::new()).expect("compiles");
        assert!(t.has_system_role() && t.has_tool_role());
        let strict = "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('roles alternate') }}{% endif %}[{{ m.content }}]{% endfor %}";
        let t = ChatTemplate::new(strict.into(), String::new(), String::new()).expect("compiles");
        assert!(!t.has_system_role() && !t.has_tool_role());
        let dropping = "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}";
        let t = ChatTemplate::new(dropping.into(), String::new(), String::new()).expect("compiles");
        assert!(!t.has_tool_role());
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new(
            "{{ raise_exception('no system role') }}".into(),
            String::new(),
            String::new(),
        )
        .expect("compiles");
        assert!(t.render(&[]).is_err());
        assert!(ChatTemplate::new("{% if %}".into(), String::new(), String::new()).is_err());
    }
}
