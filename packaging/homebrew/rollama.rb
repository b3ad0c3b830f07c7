# Homebrew formula for rollama: builds the source tarball with cargo, installs the completions
# and man pages, and runs `rollama serve` as a service (`brew services start rollama`).
# scripts/release.sh writes a copy with the release's source tarball URL and sha256 filled in
# (dist/rollama.rb). To use it, put that copy in a tap of your own:
#   brew tap-new "$USER/rollama"
#   cp dist/rollama.rb "$(brew --repository "$USER/rollama")/Formula/"
#   brew install "$USER/rollama/rollama" && brew services start rollama
class Rollama < Formula
  desc "Ollama-compatible model server and CLI in one binary"
  homepage "https://github.com/rollama/rollama"
  url "https://github.com/rollama/rollama/releases/download/v0.1.0/rollama-0.1.0-src.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license "MIT"
  head "https://github.com/rollama/rollama.git", branch: "main"

  depends_on "cmake" => :build
  depends_on "rust" => :build
  uses_from_macos "llvm" => :build # libclang, for the llama.cpp bindings (bindgen)

  def install
    # A source tarball has no .git: the commit `rollama -v` names (release.sh fills it in).
    ENV["ROLLAMA_GIT_COMMIT"] = "unknown" unless build.head?
    # Apple Silicon: llama.cpp's Metal backend (the GPU Ollama uses there); Intel Macs run on
    # the CPU, as Ollama does.
    features = Hardware::CPU.arm? ? ["--features", "metal"] : []
    system "cargo", "install", *features, *std_cargo_args
    bash_completion.install "completions/rollama.bash" => "rollama"
    zsh_completion.install "completions/_rollama"
    fish_completion.install "completions/rollama.fish"
    man1.install Dir["man/*.1"]
  end

  service do
    run [opt_bin/"rollama", "serve"]
    keep_alive true
    working_dir var
    log_path var/"log/rollama.log"
    error_log_path var/"log/rollama.log"
  end

  test do
    port = free_port
    ENV["OLLAMA_HOST"] = "127.0.0.1:#{port}"
    ENV["OLLAMA_MODELS"] = (testpath/"models").to_s
    pid = spawn bin/"rollama", "serve"
    begin
      answered = false
      60.times do
        sleep 1
        next unless quiet_system bin/"rollama", "list"

        answered = true
        break
      end
      assert answered, "rollama serve did not answer on port #{port}"
      assert_match "NAME", shell_output("#{bin}/rollama list")
    ensure
      Process.kill("TERM", pid)
      Process.wait(pid)
    end
  end
end
