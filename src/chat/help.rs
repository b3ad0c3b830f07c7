//! The help texts of the REPL, word for word from Ollama's `cmd/interactive.go` (which
//! prints them on stderr). For models with `vision`, `/?` adds Ollama's line about image
//! paths, less its mention of `.wav` audio, which rollama does not take.

/// `/?` and `/help`.
pub const COMMANDS: &str = concat!(
    "Available Commands:\n",
    "  /set            Set session variables\n",
    "  /show           Show model information\n",
    "  /load <model>   Load a session or model\n",
    "  /save <model>   Save your current session\n",
    "  /clear          Clear session context\n",
    "  /bye            Exit\n",
    "  /?, /help       Help for a command\n",
    "  /? shortcuts    Help for keyboard shortcuts\n",
    "\n",
    "Use \"\"\" to begin a multi-line message.\n",
    "\n",
);

/// The line `/?` adds for a model that reads images.
pub const FILES: &str = "Use /path/to/file to include .jpg, .png, or .webp images.\n";

/// `/?` for a model that does (`multimodal`) or does not read images.
pub fn commands(multimodal: bool) -> String {
    let mut text = COMMANDS.to_string();
    if multimodal {
        text.truncate(text.len() - 1);
        text.push_str(FILES);
        text.push('\n');
    }
    text
}

/// `/set` alone and `/? set`.
pub const SET: &str = concat!(
    "Available Commands:\n",
    "  /set parameter ...     Set a parameter\n",
    "  /set system <string>   Set system message\n",
    "  /set history           Enable history\n",
    "  /set nohistory         Disable history\n",
    "  /set wordwrap          Enable wordwrap\n",
    "  /set nowordwrap        Disable wordwrap\n",
    "  /set format json       Enable JSON mode\n",
    "  /set noformat          Disable formatting\n",
    "  /set verbose           Show LLM stats\n",
    "  /set quiet             Disable LLM stats\n",
    "  /set think             Enable thinking\n",
    "  /set nothink           Disable thinking\n",
    "\n",
);

/// `/? shortcuts`.
pub const SHORTCUTS: &str = concat!(
    "Available keyboard shortcuts:\n",
    "  Ctrl + a            Move to the beginning of the line (Home)\n",
    "  Ctrl + e            Move to the end of the line (End)\n",
    "   Alt + b            Move back (left) one word\n",
    "   Alt + f            Move forward (right) one word\n",
    "  Ctrl + k            Delete the sentence after the cursor\n",
    "  Ctrl + u            Delete the sentence before the cursor\n",
    "  Ctrl + w            Delete the word before the cursor\n",
    "\n",
    "  Ctrl + l            Clear the screen\n",
    "  Ctrl + g            Open default editor to compose a prompt\n",
    "  Ctrl + c            Stop the model from responding\n",
    "  Ctrl + d            Exit ollama (/bye)\n",
    "\n",
);

/// `/show` alone and `/? show`.
pub const SHOW: &str = concat!(
    "Available Commands:\n",
    "  /show info         Show details for this model\n",
    "  /show license      Show model license\n",
    "  /show modelfile    Show Modelfile for this model\n",
    "  /show parameters   Show parameters for this model\n",
    "  /show system       Show system message\n",
    "  /show template     Show prompt template\n",
    "\n",
);

/// `/set parameter` without a value.
pub const PARAMETERS: &str = concat!(
    "Available Parameters:\n",
    "  /set parameter seed <int>             Random number seed\n",
    "  /set parameter num_predict <int>      Max number of tokens to predict\n",
    "  /set parameter top_k <int>            Pick from top k num of tokens\n",
    "  /set parameter top_p <float>          Pick token based on sum of probabilities\n",
    "  /set parameter min_p <float>          Pick token based on top token probability * min_p\n",
    "  /set parameter num_ctx <int>          Set the context size\n",
    "  /set parameter temperature <float>    Set creativity level\n",
    "  /set parameter repeat_penalty <float> How strongly to penalize repetitions\n",
    "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions\n",
    "  /set parameter num_gpu <int>          The number of layers to send to the GPU\n",
    "  /set parameter stop <string> <string> ...   Set the stop parameters\n",
    "\n",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multimodal_model_adds_the_file_line_before_the_last_blank_line() {
        assert_eq!(commands(false), COMMANDS);
        let with_files = commands(true);
        assert!(with_files.ends_with(
            "Use \"\"\" to begin a multi-line message.\n\
             Use /path/to/file to include .jpg, .png, or .webp images.\n\n"
        ));
    }
}
