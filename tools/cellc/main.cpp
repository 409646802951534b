// cellc: the command-line front door. Each subcommand lives in its own file (commands/*.cpp) and
// registers itself in the table below.
#include <csignal>
#include <cstring>
#include <iostream>
#include <new>
#include <stdexcept>

#include "Cli.h"

int main(int argc, char** argv) {
  using namespace cellc::cli;
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, and the checked writes
  // (io/AtomicFile.h) say which file and why, instead of SIGXFSZ killing the process unheard.
  // Children (runs of a sweep, the plot scripts) inherit it.
  std::signal(SIGXFSZ, SIG_IGN);
  const auto& cmds = commands();
  auto usage = [&](std::ostream& os) {
    os << "usage: cellc <command> [options] ...\n       cellc --version\n\ncommands:\n";
    for (const Command& c : cmds) {
      size_t len = std::strlen(c.name);
      os << "  " << c.name << std::string(len < 12 ? 12 - len : 1, ' ') << c.summary << "\n";
    }
    os << "\nRun 'cellc <command> --help' for a command's options.\n";
  };
  if (argc < 2) {
    usage(std::cerr);
    return kUsageError;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return 0;
  }
  if (name == "--version") {
    std::cout << "cellc " << CELLC_VERSION << " (commit " << CELLC_GIT_COMMIT << ")\n";
    return 0;
  }
  for (const Command& c : cmds)
    if (name == c.name) {
      try {
        Args args = Args::parse(argc - 2, argv + 2, c);
        if (args.help) {
          std::cout << c.help;
          return 0;
        }
        return c.run(args);
      } catch (const UsageError& e) {
        std::cerr << "cellc " << c.name << ": " << e.what() << "\n(see 'cellc " << c.name << " --help')\n";
        return kUsageError;
      } catch (const std::bad_alloc&) {
        // An allocation no estimate foresaw (train/Memory.h checks the large buffers first).
        std::cerr << "cellc " << c.name << ": error: out of memory: an allocation failed "
                  << "(std::bad_alloc); lower the sizes (batch, steps, dims) or free memory\n";
        return 1;
      } catch (const std::length_error& e) {
        std::cerr << "cellc " << c.name << ": error: a buffer larger than any machine's memory was "
                  << "asked for (" << e.what() << "); lower the sizes (batch, steps, dims)\n";
        return 1;
      } catch (const std::exception& e) {
        std::cerr << "cellc " << c.name << ": error: " << e.what() << "\n";
        return 1;
      }
    }
  std::cerr << "cellc: unknown command '" << name << "'\n\n";
  usage(std::cerr);
  return kUsageError;
}
