package translate

import "encoding/json"

// APIError is an error in OpenAI's shape: {"error":{"message","type","param","code"}}.
// Every failure a client sees is one of these, with the HTTP status it is sent with.
type APIError struct {
	Status  int
	Message string
	Type    string
	Param   string
	Code    string
}

func (e *APIError) Error() string { return e.Message }

// JSON renders the error body.
func (e *APIError) JSON() []byte {
	var body struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	body.Error.Message = e.Message
	body.Error.Type = e.Type
	if e.Param != "" {
		body.Error.Param = &e.Param
	}
	if e.Code != "" {
		body.Error.Code = &e.Code
	}
	b, _ := json.Marshal(body) // cannot fail: strings only
	return b
}
