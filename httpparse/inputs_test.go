package httpparse

// Shared inputs of the benchmarks and the allocation tests.
const (
	minimalGET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

	browserGET = "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg?size=large&v=3 HTTP/1.1\r\n" +
		"Host: www.kittyhell.com\r\n" +
		"User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; ja-JP-mac; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n" +
		"Accept-Encoding: gzip,deflate\r\n" +
		"Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n" +
		"Keep-Alive: 115\r\n" +
		"Connection: keep-alive\r\n" +
		"Referer: https://www.kittyhell.com/2010/03/\r\n" +
		"Cache-Control: max-age=0\r\n" +
		"Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; __utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; __utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/|utmcmd=referral\r\n" +
		"\r\n"

	chunkedPOSTHead = "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	chunkedPOSTBody = "1a\r\n{\"name\":\"gopher\",\"age\":12}\r\n" +
		"40\r\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n" +
		"10;part=last\r\nfedcba9876543210\r\n"
	chunkedPOST = chunkedPOSTHead + chunkedPOSTBody + "0\r\n\r\n"
)
