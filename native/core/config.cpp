#include "config.h"

namespace dpsm::core {

Json parse_json_object(const std::string& text, const std::string& what) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(what + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw std::invalid_argument(what + ": expected a JSON object");
  return j;
}

}  // namespace dpsm::core
