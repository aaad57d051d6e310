// Configuration arrives from TypeScript as one JSON document per config object; the zod schemas in lib/ own
// validation and defaults. This side reads the fields it needs (every one required: no C++ default can
// disagree with TypeScript's) and states a run's identity as the canonical dump of its documents.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace dpsm::core {

using Json = nlohmann::json;

// Parses `text`; throws std::invalid_argument naming `what` when it is not a JSON object.
Json parse_json_object(const std::string& text, const std::string& what);

// One field of a document, by name; a missing or mistyped field throws std::invalid_argument naming it
// (a mismatch between lib/ and native/, never a user error: users' values are checked in TypeScript).
template <typename T>
T field(const Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) throw std::invalid_argument(std::string("config: missing field '") + key + "'");
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("config: field '") + key + "' has the wrong type (" + e.what() + ")");
  }
}

// The same document always dumps to the same text: keys sorted (nlohmann's objects are ordered maps),
// numbers in shortest round-trip form.
inline std::string canonical(const Json& j) { return j.dump(); }

}  // namespace dpsm::core
