-- plex-livetv-authz for HAProxy 2.6+ (tested with Debian 12's 2.6.12): asks the service about every request
-- (its /v1/nginx endpoint, with the frontend key over TCP) and leaves the decision in transaction variables
-- that haproxy.cfg installs: txn.plexauthz_uri (the target to forward), txn.plexauthz_token (the token
-- header, empty for none) and txn.plexauthz_blocked. No answer leaves them unset: the request goes on
-- unchanged and un-elevated.
local service = os.getenv("PLEXAUTHZ_URL") or "http://127.0.0.1:33241/v1/nginx"
local key_file = os.getenv("PLEXAUTHZ_KEY_FILE") or "/etc/plex-livetv-authz/frontend-key"

local function read_key(path)
  local file = io.open(path, "r")
  if file == nil then return nil end
  local key = file:read("*l")
  file:close()
  return key and key:match("^%s*(.-)%s*$")
end
local frontend_key = read_key(key_file)
if frontend_key == nil or frontend_key == "" then
  frontend_key = nil
  core.Alert("plexauthz: cannot read the frontend key from " .. key_file .. "; nothing will be elevated")
end

-- Headers the service reads for itself never come from the client.
local control = { ["x-plexauthz-key"] = true, ["x-original-uri"] = true, ["x-original-method"] = true,
  ["x-original-content-length"] = true, ["x-original-transfer-encoding"] = true,
  ["x-original-connection"] = true, ["x-forwarded-for"] = true, ["content-length"] = true,
  ["transfer-encoding"] = true, ["connection"] = true, ["host"] = true }

local function first(headers, name)
  local values = headers[name]
  return values and values[0]
end

core.register_action("plexauthz", { "http-req" }, function(txn)
  if frontend_key == nil then return end  -- misconfigured: nothing is elevated
  local request = txn.http:req_get_headers()
  local headers = {}
  for name, values in pairs(request) do
    if not control[name] then
      headers[name] = {}
      for index = 0, #values do headers[name][#headers[name] + 1] = values[index] end
    end
  end
  local xff = first(request, "x-forwarded-for")
  local peer = txn.sf:src()
  headers["x-forwarded-for"] = { xff and (xff .. ", " .. peer) or peer }
  headers["x-original-method"] = { txn.sf:method() }
  headers["x-original-uri"] = { txn.sf:url() }
  headers["x-original-content-length"] = { first(request, "content-length") or "" }
  headers["x-original-transfer-encoding"] = { first(request, "transfer-encoding") or "" }
  headers["x-original-connection"] = { first(request, "connection") or "" }
  headers["x-plexauthz-key"] = { frontend_key }
  local answer = core.httpclient():get({ url = service, headers = headers, timeout = 5000 })
  if answer == nil or answer.status == nil then return end
  if answer.status == 403 then
    txn:set_var("txn.plexauthz_blocked", 1)
  elseif answer.status == 200 then
    local uri = first(answer.headers, "x-plexauthz-uri")
    local token = first(answer.headers, "x-plexauthz-token")
    if uri ~= nil and uri ~= "" and token ~= nil then
      txn:set_var("txn.plexauthz_uri", uri)
      txn:set_var("txn.plexauthz_token", token)
    end
  end
end)
