//! `POST /device` and the device-code grant at `/token` (RFC 8628).

use super::*;

impl Inner {
    /// `POST /device`: the device authorization response, once the client is authenticated.
    pub(super) fn device_authorization(&mut self, req: &TokenRequest) -> Result<Value, OAuthError> {
        let params: HashMap<&str, &str> = req
            .form
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if self.cfg.auth != ClientAuth::Basic && !params.contains_key("client_id") {
            return Err(invalid_request("client_id is missing"));
        }
        self.authenticate_client(req, &params)?;
        let cfg = self.device_cfg.clone();
        let device_code = sentinel("DEVICE");
        self.minted.push(device_code.clone());
        self.device_codes.insert(
            device_code.clone(),
            DeviceEntry {
                polls: 0,
                interval: Duration::from_secs(cfg.interval.unwrap_or(5)),
                last_poll: None,
                used: false,
            },
        );
        let uri = cfg
            .verification_uri
            .clone()
            .unwrap_or_else(|| format!("{}/device-verify", self.issuer));
        let mut body = json!({
            "device_code": device_code,
            "user_code": cfg.user_code,
            "verification_uri": uri,
            "expires_in": cfg.expires_in,
        });
        if cfg.complete {
            body["verification_uri_complete"] = format!("{uri}?user_code={}", cfg.user_code).into();
        }
        if let Some(i) = cfg.interval {
            body["interval"] = i.into();
        }
        Ok(body)
    }

    /// A device-code poll (RFC 8628 §3.4/§3.5).
    pub(super) fn device_token(
        &mut self,
        params: &HashMap<&str, &str>,
    ) -> Result<Value, OAuthError> {
        let Some(code) = params.get("device_code").copied() else {
            return Err(invalid_request("device_code is missing"));
        };
        let cfg = self.device_cfg.clone();
        let now = std::time::Instant::now();
        self.device_polls.push(now);
        let Some(entry) = self.device_codes.get_mut(code) else {
            return Err(invalid_grant("unknown device code"));
        };
        if entry.used {
            return Err(invalid_grant("device code already used"));
        }
        // A poll before the interval has passed (with 200 ms of slack for scheduling).
        let early = entry.last_poll.is_some_and(|last| {
            now.duration_since(last) + Duration::from_millis(200) < entry.interval
        });
        entry.last_poll = Some(now);
        if early {
            entry.interval += Duration::from_secs(5);
            self.early_polls += 1;
            return Err(oauth_error("slow_down", "polling too fast"));
        }
        let answer = cfg.script.get(entry.polls).copied().unwrap_or(cfg.then);
        entry.polls += 1;
        match answer {
            DeviceAnswer::Pending => Err(oauth_error("authorization_pending", "not yet approved")),
            DeviceAnswer::SlowDown => {
                entry.interval += Duration::from_secs(5);
                Err(oauth_error("slow_down", "polling too fast"))
            }
            DeviceAnswer::Deny => Err(oauth_error("access_denied", "the user refused")),
            DeviceAnswer::Expire => Err(oauth_error("expired_token", "the device code expired")),
            DeviceAnswer::Approve => {
                entry.used = true;
                let grant = self.new_grant(params.get("scope").map(|s| s.to_string()), None);
                let at = self.mint_access_token(grant);
                let rt = self.mint_refresh_token(grant);
                Ok(self.token_body(grant, at, Some(rt)))
            }
        }
    }
}

pub(super) async fn device(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = lock(&shared);
    let req = TokenRequest {
        form: parse_pairs(&body),
        authorization: header_str(&headers, header::AUTHORIZATION),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        accept: header_str(&headers, header::ACCEPT),
        query: None,
        required_header: inner.required_header(&headers),
    };
    inner.device_requests.push(req.clone());
    match inner.device_authorization(&req) {
        Ok(body) => json_response(StatusCode::OK, &body, &[]),
        Err(e) => inner.error_response(&req, e, false),
    }
}
