// RETURN_IF_ERROR / ASSIGN_OR_RETURN: Abseil 20220623 ships neither.
#ifndef AGENTSTREAM_COMMON_STATUS_MACROS_H_
#define AGENTSTREAM_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define AGENTSTREAM_CONCAT_INNER_(a, b) a##b
#define AGENTSTREAM_CONCAT_(a, b) AGENTSTREAM_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    ::absl::Status agentstream_status_ = (expr);               \
    if (!agentstream_status_.ok()) return agentstream_status_; \
  } while (0)

// ASSIGN_OR_RETURN(auto x, Foo()); assigns the value or returns the status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(AGENTSTREAM_CONCAT_(statusor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(var, lhs, expr)   \
  auto var = (expr);                             \
  if (!var.ok()) return std::move(var).status(); \
  lhs = std::move(var).value()

#endif  // AGENTSTREAM_COMMON_STATUS_MACROS_H_
