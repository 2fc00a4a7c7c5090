#include "pg/guard.hpp"

#include <cstring>

extern "C" {
#include "utils/elog.h"
}

namespace metering::pg {

namespace {
void copy_text(char* dst, size_t size, const char* src) noexcept
{
    std::strncpy(dst, src ? src : "", size - 1);
    dst[size - 1] = '\0';
}
}  // namespace

void capture(PendingError& pending, const core::Error& error) noexcept
{
    copy_text(pending.sqlstate, sizeof pending.sqlstate, error.sqlstate());
    copy_text(pending.message, sizeof pending.message, error.message().c_str());
    copy_text(pending.detail, sizeof pending.detail, error.detail().c_str());
    copy_text(pending.hint, sizeof pending.hint, error.hint().c_str());
    pending.set = true;
}

void capture_message(PendingError& pending, const char* sqlstate, const char* message) noexcept
{
    copy_text(pending.sqlstate, sizeof pending.sqlstate, sqlstate);
    copy_text(pending.message, sizeof pending.message, message);
    pending.detail[0] = '\0';
    pending.hint[0] = '\0';
    pending.set = true;
}

void raise(const PendingError& pending)
{
    if (pending.pg)
        ReThrowError(pending.pg);
    const char* s = pending.sqlstate;
    ereport(ERROR,
            (errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
             errmsg("%s", pending.message),
             pending.detail[0] ? errdetail("%s", pending.detail) : 0,
             pending.hint[0] ? errhint("%s", pending.hint) : 0));
    pg_unreachable();
}

}  // namespace metering::pg
