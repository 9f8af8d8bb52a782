// The sample mini program: one customer chat page on Herald (see ../README.md).
App({
  globalData: {
    // the Herald server: https for REST (wx.request), wss for the JSON protocol (wx.connectSocket);
    // both must be on the mini program's legal domain lists (docs/miniprogram.md)
    server: 'https://herald.example.com',
  },
});
