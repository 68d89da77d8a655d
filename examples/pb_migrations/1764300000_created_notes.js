/// <reference path="../pb_data/types.d.ts" />

// The "notes" collection the example agents read and write as the calling
// user: every note belongs to the user who created it, and PocketBase's API
// rules keep users to their own notes.
migrate((app) => {
  const collection = new Collection({
    type: "base",
    name: "notes",
    listRule: "owner = @request.auth.id",
    viewRule: "owner = @request.auth.id",
    createRule: "@request.auth.id != '' && @request.body.owner = @request.auth.id",
    updateRule: "owner = @request.auth.id && (@request.body.owner:isset = false || @request.body.owner = @request.auth.id)",
    deleteRule: "owner = @request.auth.id",
    fields: [
      { name: "text", type: "text", required: true, max: 10000 },
      { name: "owner", type: "relation", required: true, maxSelect: 1, collectionId: "_pb_users_auth_", cascadeDelete: true },
      { name: "source", type: "text", max: 100 },
      { name: "created", type: "autodate", onCreate: true },
      { name: "updated", type: "autodate", onCreate: true, onUpdate: true },
    ],
  });
  app.save(collection);
}, (app) => {
  app.delete(app.findCollectionByNameOrId("notes"));
});
