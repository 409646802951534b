// Small text helpers for messages, shared by the compiler and the runtime: the edit distance
// behind every "did you mean ...?", and a printable excerpt of untrusted bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cellc {

size_t editDistance(std::string_view a, std::string_view b);

// The candidate closest to `name` within a third of its length (at least 2 edits), or "".
std::string closestName(std::string_view name, const std::vector<std::string>& candidates);

// `text` with non-printable bytes as \xNN, cut at `limit` characters with "...".
std::string printableExcerpt(std::string_view text, size_t limit);

// `path` made absolute, with symlinks resolved where they exist (the path itself if that fails).
std::string resolvedPath(const std::string& path);

// A path for a message: quoted as given, then the absolute path it resolves to when that differs
// ("'x.cell' (/home/me/x.cell)"), so that a user can see which file was tried.
std::string quotedPath(const std::string& path);

// "" when `path` is a regular file that can be opened for reading, else a message naming the
// path (quotedPath) and why not: the OS error, or that it is a directory or a special file.
std::string unreadableFileReason(const std::string& path);

}  // namespace cellc
