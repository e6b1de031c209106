-- The subject of a GopherMQ request body, decoded as the broker decodes it,
-- for bodies HAProxy's json_query cannot decode exactly (it leaves "\/" as
-- is and turns "\u" escapes into single bytes or nothing). haproxy.cfg
-- calls it only for bodies that hold such escapes.
--
--   http-request set-var(txn.subject) lua.gophermq_subject
--
-- The top-level "subject", or, for a many-subject batch, its first entry's;
-- an empty string when the body has neither (any node then answers 400).
local cjson = require("cjson.safe")

core.register_fetches("gophermq_subject", function(txn)
  local request = cjson.decode(txn.sf:req_body() or "")
  if type(request) ~= "table" then
    return ""
  end
  local subject = request.subject
  if subject == nil and type(request.messages) == "table" and type(request.messages[1]) == "table" then
    subject = request.messages[1].subject
  end
  if type(subject) ~= "string" then
    return ""
  end
  return subject
end)
